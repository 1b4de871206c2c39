// Package fields decodes the fields of a message's body for the edge's
// codecs (edge/wire, Starbus's protocol, and edge/sgs, SimpleSgs's):
// big-endian integers and runs of bytes, the first error sticking, so that
// a decoder reads every field and checks once. It depends on the standard
// library alone, as the codecs do.
package fields

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ReadBody reads the n bytes of a message whose length prefix was read:
// an end of input inside them is io.ErrUnexpectedEOF.
func ReadBody(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// Reader reads the fields of one body.
type Reader struct {
	b         []byte
	err       error
	malformed error // what the reader's errors wrap: the codec's sentinel
}

// NewReader reads b; its errors wrap malformed.
func NewReader(b []byte, malformed error) *Reader {
	return &Reader{b: b, malformed: malformed}
}

// Take returns the next n bytes, or nil (and the error) if fewer are
// left. They alias the body, with no room to append into it.
func (r *Reader) Take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated body", r.malformed)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// U8 reads a byte.
func (r *Reader) U8() byte {
	if v := r.Take(1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 {
	if v := r.Take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	if v := r.Take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	if v := r.Take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Rest returns the remaining bytes: a field that ends the body.
func (r *Reader) Rest() []byte {
	return r.Take(len(r.b))
}

// Fail records err as the body's error, unless it has one; err should
// wrap the codec's sentinel.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Err returns the first error.
func (r *Reader) Err() error { return r.err }

// End returns the first error, or, if bytes are left after the last
// field, an error saying so.
func (r *Reader) End() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", r.malformed, len(r.b))
	}
	return r.err
}
