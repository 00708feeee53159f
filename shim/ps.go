package shim

// Processes lists the host pids of every process in the container.
func (rt *Runtime) Processes(id string) ([]int, error) {
	lock, err := rt.Root.Lock(id)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ct, err := load(lock.Dir, id)
	if err != nil {
		return nil, ErrNotRunning
	}
	return ct.Processes()
}
