package validate

import (
	"context"
	"os"
	"testing"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// BenchmarkPackageHello checks the example package as a deploy does: its
// registrations are all literal, so no child is started.
func BenchmarkPackageHello(b *testing.B) {
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		b.Fatal(err)
	}
	files := []*adminv1.SourceFile{{Name: "hello.go", Content: src}}
	for b.Loop() {
		if _, err := Package(context.Background(), "", files, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPackageEvaluated checks a package that registers in a loop,
// which a child evaluates: the price of one child.
func BenchmarkPackageEvaluated(b *testing.B) {
	self, err := SelfCommand()
	if err != nil {
		b.Fatal(err)
	}
	ev := NewEvaluator(self, EvalLimits{CPU: DefaultEvalCPU, Memory: DefaultEvalMemory, Timeout: DefaultEvalTimeout}, discard)
	files := []*adminv1.SourceFile{{Name: "svc.go", Content: []byte(evalHeader + "func init() {\n\tfor _, n := range []string{\"a\", \"b\"} {\n\t\tsdk.Register(\"svc.\"+n, h)\n\t}\n}\n" + evalHandler)}}
	for b.Loop() {
		if _, err := Package(context.Background(), "", files, ev); err != nil {
			b.Fatal(err)
		}
	}
}
