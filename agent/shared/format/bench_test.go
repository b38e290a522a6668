package format

import (
	"strings"
	"testing"
)

// benchBody is an order with 200 lines, about 16 KiB.
var benchBody = []byte("<req><id>1</id><name>Ada</name>" +
	strings.Repeat("<counts>12345</counts><tags>some tag</tags>", 200) +
	"<address><city>Oslo</city><zip>150</zip></address></req>")

func BenchmarkDecodeXML(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeXML(benchBody, "", orderType); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeXML(b *testing.B) {
	j, err := DecodeXML(benchBody, "", orderType)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(j)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeXML(j, ""); err != nil {
			b.Fatal(err)
		}
	}
}
