package handlers

// SetAfterCommit installs a hook that runs between commit and ack.
func (r *Runtime) SetAfterCommit(f func()) { r.afterCommit = f }
