// Package hello is an example Weft service package. It registers one
// service, hello.greet, which greets someone by name in one of a few
// languages.
//
// Deploy it with its non-test files; test it with `go test` like any Go
// package (see hello_test.go).
package hello

import (
	"sort"
	"strings"

	"github.com/weft-dev/weft/agent/sdk"
)

// GreetInput is the input of hello.greet.
type GreetInput struct {
	// Name is who to greet.
	Name string `json:"name" weft:"required"`
	// Language is a language code such as "en" (the default) or "fr".
	Language string `json:"language,omitempty"`
}

// GreetOutput is the output of hello.greet.
type GreetOutput struct {
	Greeting string `json:"greeting"`
	Language string `json:"language"`
}

// greetings maps a language code to its greeting.
var greetings = map[string]string{
	"de": "Hallo",
	"en": "Hello",
	"es": "Hola",
	"fr": "Bonjour",
}

func init() {
	sdk.Register("hello.greet", Greet)
}

// Greet returns a greeting for in.Name in in.Language.
func Greet(ctx *sdk.Context, in GreetInput) (GreetOutput, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return GreetOutput{}, sdk.Errorf(400, "name must not be blank")
	}
	lang := strings.ToLower(in.Language)
	if lang == "" {
		lang = "en"
	}
	word, ok := greetings[lang]
	if !ok {
		return GreetOutput{}, sdk.Errorf(400, "unknown language %q (known: %s)", in.Language, known())
	}
	ctx.Logger().Info("greeting", "language", lang)
	return GreetOutput{Greeting: word + ", " + name + "!", Language: lang}, nil
}

func known() string {
	langs := make([]string, 0, len(greetings))
	for l := range greetings {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	return strings.Join(langs, ", ")
}
