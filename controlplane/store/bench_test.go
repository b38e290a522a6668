package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// BenchmarkCreateChannel measures one config change: lock, checks, insert,
// revision bump, change log.
func BenchmarkCreateChannel(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			s := storetest.Open(b, be)
			ctx := context.Background()
			if _, err := s.Deploy(ctx, "bench", []*adminv1.Package{pkg("alpha", []string{"alpha.one"}, "a.go", "a")}); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				name := fmt.Sprintf("ch-%d", i)
				i++
				if _, err := s.CreateChannel(ctx, channel(name, "/"+name, "alpha.one")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDesired measures a full snapshot of 20 packages of 5 files of
// 8 KiB and 100 channels.
func BenchmarkDesired(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			s := storetest.Open(b, be)
			ctx := context.Background()
			body := string(make([]byte, 8<<10))
			var pkgs []*adminv1.Package
			for p := range 20 {
				var files []string
				for f := range 5 {
					files = append(files, fmt.Sprintf("f%d.go", f), fmt.Sprintf("%d%d", p, f)+body)
				}
				pkgs = append(pkgs, pkg(fmt.Sprintf("pkg%02d", p), []string{fmt.Sprintf("pkg%02d.svc", p)}, files...))
			}
			if _, err := s.Deploy(ctx, "bench", pkgs); err != nil {
				b.Fatal(err)
			}
			for c := range 100 {
				name := fmt.Sprintf("ch-%03d", c)
				if _, err := s.CreateChannel(ctx, channel(name, "/"+name, fmt.Sprintf("pkg%02d.svc", c%20))); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, err := s.Desired(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
