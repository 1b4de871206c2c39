package bus

import "syscall"

// tmpfsMagic is Linux's TMPFS_MAGIC (statfs(2)).
const tmpfsMagic = 0x01021994

func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}
