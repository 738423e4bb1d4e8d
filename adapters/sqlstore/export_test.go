package sqlstore

// QueuedSettles counts the settle requests waiting for a batch of st.
func QueuedSettles(st *Store) int { return st.settles.queued() }

// SettleBatches counts the settle transactions st has run.
func SettleBatches(st *Store) int64 { return st.settles.batches.Load() }
