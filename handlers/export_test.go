package handlers

// SetAfterCommit installs a hook that runs between commit and ack.
func (r *Runtime) SetAfterCommit(f func()) { r.afterCommit = f }

// MuteHeartbeats stops (or resumes) the runtime's heartbeats without its
// knowing: the others take its partitions over while it still works.
func (r *Runtime) MuteHeartbeats(on bool) { r.muteHeartbeats.Store(on) }
