package wire

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestCodesMatchProtocolPage: every code the server can send is in
// PROTOCOL.md's error table under its number and name, and the table
// lists no code the server does not have.
func TestCodesMatchProtocolPage(t *testing.T) {
	page, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| ([a-z-]+) \| (yes|no)`)
	inTable := map[Code]string{}
	for _, m := range row.FindAllStringSubmatch(string(page), -1) {
		n, _ := strconv.Atoi(m[1])
		inTable[Code(n)] = m[2]
	}
	for c := range codes {
		name, ok := inTable[c]
		if !ok {
			t.Errorf("code %d (%s) is not in PROTOCOL.md's error table", c, c.Name())
			continue
		}
		if name != c.Name() {
			t.Errorf("code %d: PROTOCOL.md names it %q, the server %q", c, name, c.Name())
		}
	}
	for c, name := range inTable {
		if _, ok := codes[c]; !ok {
			t.Errorf("PROTOCOL.md lists code %d (%s), which the server does not have", c, name)
		}
	}
}
