//go:build !linux

package bus

func isTmpfs(string) bool { return false }
