// Package configfile is Weft's config file: the admin API's Config written
// as YAML or JSON, maybe split over several files by include. Read keeps
// the file and line of every object and field, so that an error about the
// config, found here or by the control plane, can name where to fix it;
// Marshal writes a config the way export does, stable byte for byte.
//
// protojson reads and writes the values; this package adds what a file
// has beyond them: YAML, includes, the line of each field, and a layout
// that holds still. It lives under proto/, beside the API it is a text
// form of, because weftctl and the control plane both read it and the
// control plane imports nothing of ctl/.
package configfile

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// kind is one list of objects of a Config.
type kind struct {
	list protoreflect.Name // the Config's field, such as channels
	word string            // how a message names one object, such as channel
}

// kinds are the Config's lists of objects, in the order of its fields.
var kinds = []kind{
	{"security", "security"},
	{"outgoing", "outgoing"},
	{"channels", "channel"},
	{"jobs", "job"},
	{"packages", "package"},
}

// kindOf is the kind whose list is named list.
func kindOf(list string) (kind, bool) {
	for _, k := range kinds {
		if string(k.list) == list {
			return k, true
		}
	}
	return kind{}, false
}

// label is how a message names an object of kind k: channel "orders".
func (k kind) label(name string) string {
	if name == "" {
		return k.word + " (no name)"
	}
	return fmt.Sprintf("%s %q", k.word, name)
}

// listOf is the list field of cfg by name.
func listOf(cfg *adminv1.Config, field protoreflect.Name) protoreflect.List {
	m := cfg.ProtoReflect()
	return m.Mutable(m.Descriptor().Fields().ByName(field)).List()
}

// nameOf is the name field of an object.
func nameOf(m protoreflect.Message) string {
	return m.Get(m.Descriptor().Fields().ByName("name")).String()
}

// pos is a line of a config file.
type pos struct {
	file string
	line int
}

// String is "file:line", or "" for no place.
func (p pos) String() string {
	if p.file == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", p.file, p.line)
}

// Doc is a config read from its files, with where each part was written.
type Doc struct {
	// Config is the config of every file read, merged: each kind's objects
	// in the order read.
	Config *adminv1.Config

	version pos                     // where the version was given, if it was
	objects map[string][]*objectPos // by list name, index for index as the Config's lists
}

// objectPos is where an object and its fields were written; the fields
// are in the object's file.
type objectPos struct {
	at     pos
	fields map[string]int // the line of each field's key, by the field's path in the object
}

// Locate is "file:line" of field, a path into d.Config as the control
// plane names it: channels[3], channels[3].service, security[0].password,
// jobs[2].agent_labels["tier"], packages[1].files[0].content, or version.
// A leading "config." is allowed. It is the line of the deepest part of
// the path the file gives (the field's key, else the object's first line),
// or "" when the path names no object of the file (an index out of range,
// an unknown list).
func (d *Doc) Locate(field string) string {
	p, _ := d.position(field)
	return p.String()
}

// position is where field was written, and whether it was found.
func (d *Doc) position(field string) (pos, bool) {
	field = strings.TrimPrefix(field, "config.")
	if field == "version" {
		return d.version, d.version.file != ""
	}
	list, rest, ok := strings.Cut(field, "[")
	if !ok {
		return pos{}, false
	}
	index, rest, ok := strings.Cut(rest, "]")
	if !ok {
		return pos{}, false
	}
	i, err := strconv.Atoi(index)
	objs := d.objects[list]
	if err != nil || i < 0 || i >= len(objs) {
		return pos{}, false
	}
	obj := objs[i]
	parts := splitPath(rest)
	for n := len(parts); n > 0; n-- {
		if line, ok := obj.fields[joinPath(parts[:n])]; ok {
			return pos{obj.at.file, line}, true
		}
	}
	return obj.at, true
}
