// Command plainserver is the baseline of the channel benchmark: a plain
// net/http handler doing the same decode, transform and encode as the
// bench.transform service behind a Weft channel.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"strings"
)

type order struct {
	Customer string  `json:"customer"`
	Item     string  `json:"item"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

type summary struct {
	Customer string  `json:"customer"`
	Item     string  `json:"item"`
	Total    float64 `json:"total"`
	Bulk     bool    `json:"bulk"`
}

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := flag.String("tls-cert", "", "serve HTTPS with this certificate file (and --tls-key)")
	keyFile := flag.String("tls-key", "", "key file of --tls-cert")
	flag.Parse()
	http.HandleFunc("POST /bench", func(w http.ResponseWriter, r *http.Request) {
		var in order
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := summary{
			Customer: strings.ToUpper(in.Customer),
			Item:     in.Item,
			Total:    float64(in.Quantity) * in.Price,
			Bulk:     in.Quantity >= 100,
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	if *certFile != "" {
		log.Fatal(http.ListenAndServeTLS(*addr, *certFile, *keyFile, nil))
	}
	log.Fatal(http.ListenAndServe(*addr, nil))
}
