// Package orders is a service of about 200 lines used to measure loading.
package orders

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

// Line is one line of an order.
type Line struct {
	SKU      string  `json:"sku" weft:"required"`
	Quantity int     `json:"quantity" weft:"required"`
	Price    float64 `json:"price" weft:"required"`
	Discount float64 `json:"discount,omitempty"`
}

// Address is a postal address.
type Address struct {
	Street  string `json:"street" weft:"required"`
	City    string `json:"city" weft:"required"`
	Zip     string `json:"zip"`
	Country string `json:"country" weft:"required"`
}

// PriceInput is the input of orders.price.
type PriceInput struct {
	Customer string  `json:"customer" weft:"required"`
	Currency string  `json:"currency"`
	Lines    []Line  `json:"lines" weft:"required"`
	ShipTo   Address `json:"shipTo" weft:"required"`
	Coupon   string  `json:"coupon,omitempty"`
}

// PriceOutput is the output of orders.price.
type PriceOutput struct {
	Customer string    `json:"customer"`
	Currency string    `json:"currency"`
	Subtotal float64   `json:"subtotal"`
	Shipping float64   `json:"shipping"`
	Tax      float64   `json:"tax"`
	Total    float64   `json:"total"`
	Lines    int       `json:"lines"`
	Notes    []string  `json:"notes,omitempty"`
	PricedAt time.Time `json:"pricedAt"`
}

// SummaryInput is the input of orders.summary.
type SummaryInput struct {
	Orders []PriceInput `json:"orders" weft:"required"`
}

// SummaryOutput is the output of orders.summary.
type SummaryOutput struct {
	Count     int            `json:"count"`
	ByCountry map[string]int `json:"byCountry"`
	TopSKUs   []string       `json:"topSkus"`
}

// EchoInput is the input of orders.echo.
type EchoInput struct {
	Text string `json:"text"`
}

// EchoOutput is the output of orders.echo.
type EchoOutput struct {
	Text string `json:"text"`
}

var taxRates = map[string]float64{
	"DE": 0.19, "FR": 0.20, "NL": 0.21, "PL": 0.23, "US": 0.0,
}

var coupons = map[string]float64{
	"WELCOME10": 0.10,
	"SPRING5":   0.05,
}

var errNoLines = errors.New("an order needs at least one line")

func init() {
	sdk.Register("orders.price", Price)
	sdk.Register("orders.summary", Summary)
	sdk.Register("orders.echo", Echo)
}

// Echo returns its input.
func Echo(_ *sdk.Context, in EchoInput) (EchoOutput, error) {
	return EchoOutput{Text: in.Text}, nil
}

// Price prices an order.
func Price(ctx *sdk.Context, in PriceInput) (PriceOutput, error) {
	out, err := price(in)
	if err != nil {
		return PriceOutput{}, err
	}
	ctx.Logger().Info("priced", "customer", in.Customer, "total", out.Total)
	return out, nil
}

func price(in PriceInput) (PriceOutput, error) {
	if len(in.Lines) == 0 {
		return PriceOutput{}, sdk.Errorf(400, "%v", errNoLines)
	}
	currency := strings.ToUpper(in.Currency)
	if currency == "" {
		currency = "EUR"
	}
	out := PriceOutput{Customer: in.Customer, Currency: currency, Lines: len(in.Lines)}
	for i, l := range in.Lines {
		if err := checkLine(i, l); err != nil {
			return PriceOutput{}, err
		}
		amount := float64(l.Quantity) * l.Price
		if l.Discount > 0 {
			amount -= amount * l.Discount
			out.Notes = append(out.Notes, fmt.Sprintf("line %d: %s%% off", i+1, strconv.FormatFloat(l.Discount*100, 'f', 0, 64)))
		}
		out.Subtotal += amount
	}
	if in.Coupon != "" {
		off, ok := coupons[strings.ToUpper(in.Coupon)]
		if !ok {
			return PriceOutput{}, sdk.Errorf(400, "unknown coupon %q", in.Coupon)
		}
		out.Subtotal -= out.Subtotal * off
		out.Notes = append(out.Notes, "coupon "+strings.ToUpper(in.Coupon))
	}
	out.Shipping = shipping(in.ShipTo, out.Subtotal)
	rate, ok := taxRates[strings.ToUpper(in.ShipTo.Country)]
	if !ok {
		return PriceOutput{}, sdk.Errorf(422, "no tax rate for country %q", in.ShipTo.Country)
	}
	out.Tax = round2((out.Subtotal + out.Shipping) * rate)
	out.Subtotal = round2(out.Subtotal)
	out.Total = round2(out.Subtotal + out.Shipping + out.Tax)
	out.PricedAt = time.Now().UTC()
	return out, nil
}

func checkLine(i int, l Line) error {
	switch {
	case l.Quantity <= 0:
		return sdk.Errorf(400, "line %d: quantity must be positive", i+1)
	case l.Price < 0:
		return sdk.Errorf(400, "line %d: price must not be negative", i+1)
	case l.Discount < 0 || l.Discount >= 1:
		return sdk.Errorf(400, "line %d: discount must be in [0, 1)", i+1)
	case !validSKU(l.SKU):
		return sdk.Errorf(400, "line %d: bad sku %q", i+1, l.SKU)
	}
	return nil
}

func validSKU(sku string) bool {
	if len(sku) < 3 || len(sku) > 32 {
		return false
	}
	for _, r := range sku {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func shipping(a Address, subtotal float64) float64 {
	if subtotal >= 100 {
		return 0
	}
	switch strings.ToUpper(a.Country) {
	case "DE":
		return 4.9
	case "US":
		return 14.9
	}
	return 9.9
}

func round2(f float64) float64 {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}

// Summary counts orders by country and lists the most ordered SKUs.
func Summary(_ *sdk.Context, in SummaryInput) (SummaryOutput, error) {
	out := SummaryOutput{Count: len(in.Orders), ByCountry: map[string]int{}}
	qty := map[string]int{}
	for _, o := range in.Orders {
		out.ByCountry[strings.ToUpper(o.ShipTo.Country)]++
		for _, l := range o.Lines {
			qty[l.SKU] += l.Quantity
		}
	}
	skus := make([]string, 0, len(qty))
	for s := range qty {
		skus = append(skus, s)
	}
	sort.Slice(skus, func(i, j int) bool {
		if qty[skus[i]] != qty[skus[j]] {
			return qty[skus[i]] > qty[skus[j]]
		}
		return skus[i] < skus[j]
	})
	if len(skus) > 3 {
		skus = skus[:3]
	}
	out.TopSKUs = skus
	return out, nil
}
