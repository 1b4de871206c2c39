package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version leads every encoded request and reply.
const Version = 1

// Outcome codes of a forwarded commit, one per request in a reply.
const (
	OK          byte = iota // committed; the first message's stream sequence follows
	Conflict                // a conflict: key, read, now follow
	Unavailable             // nothing was decided; message follows
	Unknown                 // may have landed; message follows
	Rejected                // the server refused it; message follows
	Closed                  // the leader is closing: nothing was decided, commit directly
)

// ErrMalformed reports a forwarded request or reply that does not decode.
var ErrMalformed = errors.New("kv: malformed forwarded commit")

// Msg is one message of a forwarded commit.
type Msg struct {
	Subject string
	Header  map[string][]string // never nil once decoded
	Data    []byte              // nil once decoded if empty
}

// Request is one forwarded commit: the subjects it read, with the
// revision read, the subjects it writes, and its messages, in order.
type Request struct {
	Reads  map[string]uint64
	Writes map[string]struct{}
	Msgs   []Msg
}

// AppendRequests appends the wire form of rs to b: for each request its
// reads (subject, revision), its written subjects, and its messages
// (subject, headers, data).
func AppendRequests(b []byte, rs []Request) []byte {
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = binary.AppendUvarint(b, uint64(len(r.Reads)))
		for subj, rev := range r.Reads {
			b = appendString(b, subj)
			b = binary.AppendUvarint(b, rev)
		}
		b = binary.AppendUvarint(b, uint64(len(r.Writes)))
		for subj := range r.Writes {
			b = appendString(b, subj)
		}
		b = binary.AppendUvarint(b, uint64(len(r.Msgs)))
		for _, m := range r.Msgs {
			b = appendString(b, m.Subject)
			n := 0
			for _, vs := range m.Header {
				n += len(vs)
			}
			b = binary.AppendUvarint(b, uint64(n))
			for k, vs := range m.Header {
				for _, v := range vs {
					b = appendString(b, k)
					b = appendString(b, v)
				}
			}
			b = appendString(b, string(m.Data))
		}
	}
	return b
}

// DecodeRequests decodes requests encoded by [AppendRequests], refusing
// any that carries no message or more than maxMsgs, or addresses a
// subject (message or read) for which inWorld is false. Its errors wrap
// [ErrMalformed].
func DecodeRequests(b []byte, maxMsgs int, inWorld func(subject string) bool) ([]Request, error) {
	d := decoder{b: b}
	if v := d.byte(); v != Version {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	n := d.count()
	rs := make([]Request, 0, n)
	for range n {
		r := Request{Reads: map[string]uint64{}, Writes: map[string]struct{}{}}
		for range d.count() {
			subj := d.string()
			r.Reads[subj] = d.uvarint()
		}
		for range d.count() {
			r.Writes[d.string()] = struct{}{}
		}
		nm := d.count()
		if nm == 0 || nm > maxMsgs {
			return nil, fmt.Errorf("%w: %d messages in a commit", ErrMalformed, nm)
		}
		r.Msgs = make([]Msg, 0, nm)
		for range nm {
			m := Msg{Subject: d.string(), Header: map[string][]string{}}
			for range d.count() {
				k := d.string()
				m.Header[k] = append(m.Header[k], d.string())
			}
			if data := d.string(); data != "" {
				m.Data = []byte(data)
			}
			if d.err != nil {
				return nil, d.err
			}
			if !inWorld(m.Subject) {
				return nil, fmt.Errorf("%w: subject %q is not the world's", ErrMalformed, m.Subject)
			}
			r.Msgs = append(r.Msgs, m)
		}
		for subj := range r.Reads {
			if !inWorld(subj) {
				return nil, fmt.Errorf("%w: read %q is not the world's", ErrMalformed, subj)
			}
		}
		rs = append(rs, r)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the end", ErrMalformed, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return rs, nil
}

// Outcome is what the leader decided for one forwarded request.
type Outcome struct {
	Code      byte   // OK, Conflict, ...
	First     uint64 // OK: the first message's stream sequence
	Key       string // Conflict: the key ("" if unknown), the revision read, the revision now
	Read, Now uint64
	Message   string // Unavailable, Unknown, Rejected, Closed: the error's text
}

// AppendReply appends the head of a reply holding n outcomes to b; the
// outcomes follow it, each appended by [AppendOutcome].
func AppendReply(b []byte, n int) []byte {
	return binary.AppendUvarint(append(b, Version), uint64(n))
}

// AppendOutcome appends o to b.
func AppendOutcome(b []byte, o Outcome) []byte {
	b = append(b, o.Code)
	switch o.Code {
	case OK:
		return binary.AppendUvarint(b, o.First)
	case Conflict:
		return binary.AppendUvarint(binary.AppendUvarint(appendString(b, o.Key), o.Read), o.Now)
	}
	return appendString(b, o.Message)
}

// DecodeOutcomes decodes a leader's reply to a request of n commits. Its
// errors wrap [ErrMalformed].
func DecodeOutcomes(b []byte, n int) ([]Outcome, error) {
	d := decoder{b: b}
	if v := d.byte(); v != Version {
		return nil, fmt.Errorf("%w: reply version %d", ErrMalformed, v)
	}
	if got := d.count(); got != n && d.err == nil {
		return nil, fmt.Errorf("%w: %d outcomes for %d commits", ErrMalformed, got, n)
	}
	out := make([]Outcome, n)
	for i := range out {
		o := &out[i]
		o.Code = d.byte()
		switch o.Code {
		case OK:
			o.First = d.uvarint()
		case Conflict:
			o.Key = d.string()
			o.Read = d.uvarint()
			o.Now = d.uvarint()
		case Unavailable, Unknown, Rejected, Closed:
			o.Message = d.string()
		default:
			if d.err == nil {
				d.err = fmt.Errorf("%w: outcome %d", ErrMalformed, o.Code)
			}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the end", ErrMalformed, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads what the encoders wrote; after its first error every read
// returns a zero value and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items to follow; each takes at least one byte,
// so a count beyond the bytes left is malformed.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("list")
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
