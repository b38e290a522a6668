// Package faults is a service package for the end-to-end tests of what
// SOAP and other clients are told when a call fails: its greeting has a
// required field and fails on request, and its quote's output type names
// its own SOAP answer element.
package faults

import (
	"encoding/xml"
	"errors"

	"github.com/weft-dev/weft/agent/sdk"
)

// In is the input of both services.
type In struct {
	Name string `json:"name" weft:"required"`
	Fail string `json:"fail"`
}

// Out is the greeting.
type Out struct {
	Greeting string `json:"greeting"`
}

// Quote names its SOAP answer element: <QuoteResult xmlns="urn:quotes">.
type Quote struct {
	XMLName xml.Name `xml:"urn:quotes QuoteResult" json:"-"`
	Price   float64  `json:"price"`
}

// Internal is the text of the plain error Greet returns on request: what
// must stay on the agent.
const Internal = "dial db-7.internal:3306: password for weft_app expired"

// Greet greets in.Name, or fails as in.Fail asks: "plain" with a plain Go
// error, "typed" with a 404 the caller should read.
func Greet(ctx *sdk.Context, in In) (Out, error) {
	switch in.Fail {
	case "plain":
		return Out{}, errors.New(Internal)
	case "typed":
		return Out{}, sdk.Errorf(404, "no customer %q", in.Name)
	}
	return Out{Greeting: "Hello, " + in.Name + "!"}, nil
}

func init() {
	sdk.Register("faults.greet", Greet)
	sdk.Register("faults.quote", func(ctx *sdk.Context, in In) (Quote, error) { return Quote{Price: 12.5}, nil })
}
