// Package relay is a service package for the end-to-end tests of outgoing
// connections: its services call a connection named in their input and
// return what it answered.
package relay

import (
	"encoding/xml"
	"strconv"

	"github.com/weft-dev/weft/agent/sdk"
)

// CallInput names the connection to call and its path params.
type CallInput struct {
	Conn   string            `json:"conn" weft:"required"`
	Params map[string]string `json:"params"`
}

// Call calls a JSON connection and returns its answer.
func Call(ctx *sdk.Context, in CallInput) (map[string]any, error) {
	var out map[string]any
	err := ctx.Outgoing(in.Conn).JSON(in.Params, nil, &out)
	return out, err
}

// CustomerInput is the input of relay.customer.
type CustomerInput struct {
	ID     int    `json:"id"`
	Detail bool   `json:"detail"`
	Tag    string `json:"tag"`
}

// Customer is what relay.customer answers.
type Customer struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Server string `json:"server"`
	Detail bool   `json:"detail"`
	Tag    string `json:"tag"`
	Caller string `json:"caller"`
}

// GetCustomer reads a customer from the "crm" connection; its input comes
// from the channel's path params and query.
func GetCustomer(ctx *sdk.Context, in CustomerInput) (Customer, error) {
	var c Customer
	if err := ctx.Outgoing("crm").JSON(map[string]string{"id": strconv.Itoa(in.ID)}, nil, &c); err != nil {
		return Customer{}, err
	}
	c.Detail, c.Tag, c.Caller = in.Detail, in.Tag, ctx.Principal().Subject
	return c, nil
}

// QuoteRequest is the SOAP operation relay.quote sends.
type QuoteRequest struct {
	XMLName xml.Name `xml:"urn:quotes GetQuote"`
	Symbol  string   `xml:"Symbol"`
}

// QuoteResponse is the SOAP operation the quotes service answers.
type QuoteResponse struct {
	XMLName xml.Name `xml:"GetQuoteResponse"`
	Price   float64  `xml:"Price"`
}

// QuoteInput is the input of relay.quote.
type QuoteInput struct {
	Symbol string `json:"symbol" weft:"required"`
}

// Quote is what relay.quote answers.
type Quote struct {
	Symbol string  `json:"symbol"`
	Price  float64 `json:"price"`
}

// GetQuote asks the "quotes" SOAP connection for a price.
func GetQuote(ctx *sdk.Context, in QuoteInput) (Quote, error) {
	var resp QuoteResponse
	if err := ctx.Outgoing("quotes").SOAP(nil, &QuoteRequest{Symbol: in.Symbol}, &resp); err != nil {
		return Quote{}, err
	}
	return Quote{Symbol: in.Symbol, Price: resp.Price}, nil
}

func init() {
	sdk.Register("relay.call", Call)
	sdk.Register("relay.customer", GetCustomer)
	sdk.Register("relay.quote", GetQuote)
}
