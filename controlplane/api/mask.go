package api

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/weft-dev/weft/proto/marks"
)

// readOnly says whether an update never sets fd: the name that identifies
// the object, and the output-only fields.
func readOnly(fd protoreflect.FieldDescriptor) bool {
	return fd.Name() == "name" || marks.OutputOnly(fd)
}

// applyMask copies into cur the fields of in that mask names. With an
// empty mask it copies every field in sets (so an update can leave out
// what it keeps). A path that names no field, or a read-only one, is an
// error naming it and the fields that may be given.
func applyMask(cur, in proto.Message, mask *fieldmaskpb.FieldMask) error {
	dst, src := cur.ProtoReflect(), in.ProtoReflect()
	fields := src.Descriptor().Fields()
	paths := mask.GetPaths()
	if len(paths) == 0 {
		src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if !readOnly(fd) {
				dst.Set(fd, v)
			}
			return true
		})
		return nil
	}
	for _, p := range paths {
		fd := fields.ByName(protoreflect.Name(p))
		if fd == nil || readOnly(fd) {
			return fmt.Errorf("update_mask: unknown or read-only field %q; want one of %s", p, strings.Join(writable(fields), ", "))
		}
		if src.Has(fd) {
			dst.Set(fd, src.Get(fd))
		} else {
			dst.Clear(fd)
		}
	}
	return nil
}

// writable lists the fields an update may name.
func writable(fields protoreflect.FieldDescriptors) []string {
	var out []string
	for i := range fields.Len() {
		if fd := fields.Get(i); !readOnly(fd) {
			out = append(out, string(fd.Name()))
		}
	}
	return out
}
