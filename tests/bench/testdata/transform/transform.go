// Package transform is the service of the channel benchmark: a small
// decode, transform and encode, the same as ../../plainserver does.
package transform

import (
	"strings"

	"github.com/weft-dev/weft/agent/sdk"
)

// Order is the input.
type Order struct {
	Customer string  `json:"customer"`
	Item     string  `json:"item"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

// Summary is the output.
type Summary struct {
	Customer string  `json:"customer"`
	Item     string  `json:"item"`
	Total    float64 `json:"total"`
	Bulk     bool    `json:"bulk"`
}

// Summarize totals an order.
func Summarize(ctx *sdk.Context, in Order) (Summary, error) {
	return Summary{
		Customer: strings.ToUpper(in.Customer),
		Item:     in.Item,
		Total:    float64(in.Quantity) * in.Price,
		Bulk:     in.Quantity >= 100,
	}, nil
}

func init() { sdk.Register("bench.transform", Summarize) }
