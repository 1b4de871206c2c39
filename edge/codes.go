package edge

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
)

var codeText = map[Code]string{
	CodeMalformed:       "malformed frame",
	CodeFrameTooLarge:   "frame too large",
	CodeUnknownOpcode:   "unknown opcode",
	CodeNotLoggedIn:     "not logged in",
	CodeLoginTimeout:    "login timeout",
	CodeRateLimited:     "rate limited",
	CodeSlowConsumer:    "slow consumer",
	CodeBadCredentials:  "bad credentials",
	CodeBadVersion:      "unsupported protocol version",
	CodeBadToken:        "invalid reconnect token",
	CodeInternal:        "internal error",
	CodeAlreadyLoggedIn: "already logged in",
	CodeBadName:         "invalid name",
	CodeNoRegistration:  "registration closed",
	CodeShuttingDown:    "shutting down",
	CodeUnsupported:     "unsupported",
}

func (c Code) String() string {
	if s, ok := codeText[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
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
