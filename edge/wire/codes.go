package wire

import "fmt"

// Code is a client-visible error code, carried by LoginFailed and Error
// frames. This table is the only place codes are defined; PROTOCOL.md
// lists the same.
type Code uint16

// Error codes. After the codes marked "closes", the server closes the
// connection.
const (
	CodeMalformed       Code = 1  // a frame's body does not match its opcode
	CodeFrameTooLarge   Code = 2  // declared length over the limit (closes)
	CodeUnknownOpcode   Code = 3  // opcode not in PROTOCOL.md
	CodeNotLoggedIn     Code = 4  // a session frame before login
	CodeLoginTimeout    Code = 5  // no login in time (closes)
	CodeRateLimited     Code = 6  // over the messages-per-second limit; message dropped
	CodeSlowConsumer    Code = 7  // outbound queue full (closes)
	CodeBadCredentials  Code = 8  // name or password wrong
	CodeBadVersion      Code = 9  // protocol version not supported (closes)
	CodeBadToken        Code = 10 // reconnect token unknown or expired
	CodeInternal        Code = 11 // the server could not do it; retry later
	CodeAlreadyLoggedIn Code = 12 // login or reconnect on a logged-in connection
	CodeBadName         Code = 13 // name not allowed (see PROTOCOL.md)
	CodeNoRegistration  Code = 14 // unknown name and registration is closed
	CodeShuttingDown    Code = 15 // the edge is shutting down (closes)
	CodeUnsupported     Code = 16 // a valid frame this edge does not serve
	CodeThrottled       Code = 17 // too many failed logins; retry later
	CodeOutOfOrder      Code = 18 // a numbered send that is not the next one (closes)
	CodeBadLastSeq      Code = 19 // a reconnect's last-seq beyond anything the world sent
)

var codes = map[Code]struct{ name, text string }{
	CodeMalformed:       {"malformed", "malformed frame"},
	CodeFrameTooLarge:   {"frame-too-large", "frame too large"},
	CodeUnknownOpcode:   {"unknown-opcode", "unknown opcode"},
	CodeNotLoggedIn:     {"not-logged-in", "not logged in"},
	CodeLoginTimeout:    {"login-timeout", "login timeout"},
	CodeRateLimited:     {"rate-limited", "rate limited"},
	CodeSlowConsumer:    {"slow-consumer", "slow consumer"},
	CodeBadCredentials:  {"bad-credentials", "bad credentials"},
	CodeBadVersion:      {"bad-version", "unsupported protocol version"},
	CodeBadToken:        {"bad-token", "invalid reconnect token"},
	CodeInternal:        {"internal", "internal error"},
	CodeAlreadyLoggedIn: {"already-logged-in", "already logged in"},
	CodeBadName:         {"bad-name", "invalid name"},
	CodeNoRegistration:  {"registration-closed", "registration closed"},
	CodeShuttingDown:    {"shutting-down", "shutting down"},
	CodeUnsupported:     {"unsupported", "unsupported"},
	CodeThrottled:       {"throttled", "too many failed logins"},
	CodeOutOfOrder:      {"out-of-order", "send out of order"},
	CodeBadLastSeq:      {"bad-last-seq", "last-seq beyond what was sent"},
}

// String returns the code's text for people ("bad credentials").
func (c Code) String() string {
	if d, ok := codes[c]; ok {
		return d.text
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Name returns the code's name in PROTOCOL.md ("bad-credentials").
func (c Code) Name() string {
	if d, ok := codes[c]; ok {
		return d.name
	}
	return fmt.Sprintf("code-%d", uint16(c))
}

// ProtocolError is an error the server reports to the client with a code.
type ProtocolError struct {
	Code   Code
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Reason == "" {
		return "edge: " + e.Code.String()
	}
	return "edge: " + e.Code.String() + ": " + e.Reason
}
