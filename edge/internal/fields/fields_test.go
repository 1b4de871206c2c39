package fields_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/starbus/starbus/edge/internal/fields"
)

var errBad = errors.New("bad")

func TestReader(t *testing.T) {
	r := fields.NewReader([]byte{1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 'a', 'b', 'c'}, errBad)
	if r.U8() != 1 || r.U16() != 2 || r.U32() != 3 || r.U64() != 4 {
		t.Fatal("integers misread")
	}
	if v := r.Take(1); string(v) != "a" || cap(v) != 1 {
		t.Errorf("Take: %q, capacity %d", v, cap(v))
	}
	if v := r.Rest(); string(v) != "bc" {
		t.Errorf("Rest: %q", v)
	}
	if err := r.End(); err != nil {
		t.Errorf("End: %v", err)
	}

	r = fields.NewReader([]byte{1, 2}, errBad)
	if r.U32() != 0 || r.U8() != 0 || !errors.Is(r.Err(), errBad) {
		t.Errorf("a short body: %v", r.Err())
	}
	r = fields.NewReader([]byte{1, 2}, errBad)
	r.U8()
	if err := r.End(); !errors.Is(err, errBad) {
		t.Errorf("a trailing byte: %v", err)
	}
	r = fields.NewReader(nil, errBad)
	first := errors.New("first")
	r.Fail(first)
	r.Fail(errBad)
	if r.Err() != first {
		t.Errorf("Fail kept %v", r.Err())
	}
}

func TestReadBody(t *testing.T) {
	if b, err := fields.ReadBody(strings.NewReader("abc"), 3); err != nil || string(b) != "abc" {
		t.Errorf("%q, %v", b, err)
	}
	for _, in := range []string{"", "ab"} {
		if _, err := fields.ReadBody(strings.NewReader(in), 3); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v", in, err)
		}
	}
}
