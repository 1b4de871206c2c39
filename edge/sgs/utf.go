package sgs

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxStringLength bounds the encoded length of a String (its u16 prefix).
const MaxStringLength = 0xffff

// AppendString appends s as a protocol String: a u16 byte length, then s
// in modified UTF-8, as java.io.DataOutput.writeUTF writes it. A string
// that is not valid UTF-8, or whose encoding is over MaxStringLength
// bytes, is ErrMalformed, and nothing is appended.
func AppendString(b []byte, s string) ([]byte, error) {
	n := 0
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return b, fmt.Errorf("%w: string is not UTF-8", ErrMalformed)
			}
		}
		n += utfLen(r)
	}
	if n > MaxStringLength {
		return b, fmt.Errorf("%w: a string of %d bytes in modified UTF-8, limit %d", ErrMalformed, n, MaxStringLength)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			b = append3(append3(b, hi), lo)
			continue
		}
		switch utfLen(r) {
		case 1:
			b = append(b, byte(r))
		case 2:
			b = append(b, 0xc0|byte(r>>6), 0x80|byte(r&0x3f))
		default:
			b = append3(b, r)
		}
	}
	return b, nil
}

// utfLen is the length of r in modified UTF-8.
func utfLen(r rune) int {
	switch {
	case r >= 0x10000:
		return 6
	case r >= 0x800:
		return 3
	case r >= 0x80 || r == 0:
		return 2
	}
	return 1
}

func append3(b []byte, r rune) []byte {
	return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
}

// ParseString decodes b, the bytes of a String after its length prefix,
// from modified UTF-8. It accepts exactly what writeUTF writes: a raw NUL
// byte, an overlong form (other than NUL's 0xC0 0x80), a four-byte
// sequence, a stray continuation byte, a truncated sequence, or a lone or
// reversed surrogate is ErrMalformed.
func ParseString(b []byte) (string, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		r, n := decodeChar(b[i:])
		if n == 0 {
			return "", fmt.Errorf("%w: not modified UTF-8 at byte %d", ErrMalformed, i)
		}
		i += n
		if utf16.IsSurrogate(r) {
			if r >= 0xdc00 { // a low surrogate first
				return "", fmt.Errorf("%w: lone surrogate at byte %d", ErrMalformed, i-n)
			}
			lo, m := decodeChar(b[i:])
			if m != 3 || lo < 0xdc00 || lo > 0xdfff {
				return "", fmt.Errorf("%w: lone surrogate at byte %d", ErrMalformed, i-n)
			}
			i += m
			r = utf16.DecodeRune(r, lo)
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out), nil
}

// decodeChar decodes one UTF-16 unit in its canonical modified UTF-8 form
// at the start of b, and its length; 0 if there is none.
func decodeChar(b []byte) (rune, int) {
	if len(b) == 0 {
		return 0, 0
	}
	cont := func(i int) bool { return i < len(b) && b[i]&0xc0 == 0x80 }
	switch c := b[0]; {
	case c == 0:
		return 0, 0
	case c < 0x80:
		return rune(c), 1
	case c&0xe0 == 0xc0:
		if !cont(1) {
			return 0, 0
		}
		r := rune(c&0x1f)<<6 | rune(b[1]&0x3f)
		if r != 0 && r < 0x80 {
			return 0, 0 // overlong
		}
		return r, 2
	case c&0xf0 == 0xe0:
		if !cont(1) || !cont(2) {
			return 0, 0
		}
		r := rune(c&0x0f)<<12 | rune(b[1]&0x3f)<<6 | rune(b[2]&0x3f)
		if r < 0x800 {
			return 0, 0 // overlong
		}
		return r, 3
	}
	return 0, 0
}
