package state

// WriteFileAtomic replaces name with b, readable by its owner alone (0600),
// so that a reader sees the old or the new content, never a mix, even
// across a crash. The agent's identity files use it too.
func WriteFileAtomic(name string, b []byte) error { return writeAtomic(name, b) }
