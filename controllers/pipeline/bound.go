package pipeline

// Status lists are bounded: the status is part of the object, which etcd stores, every watcher
// of profiles receives on each change, and `kubectl get -o yaml` prints. A namespace with 500
// policies of others weakening its profile made a status of several hundred KiB; etcd refuses
// objects over 1.5 MiB. Each list keeps the rows that need attention first and says in
// status.omitted how many it left out.
const (
	// maxResourceRows holds every object of all but extreme profiles (a profile with every rule
	// list full renders a few hundred on Linkerd).
	maxResourceRows = 128
	// maxExternalRows: the Effective condition counts them all; the rows name the first ones.
	maxExternalRows = 32
	// maxExpectationRows is spec.expectations' own limit (MaxItems=32).
	maxExpectationRows = 32
	// maxHeldRows is status.heldAtFloor's MaxItems.
	maxHeldRows = 64
	// maxRowMessage bounds one row's message; conditions have their own limit (trim).
	maxRowMessage = 1024
	// rowMessageBudget bounds the messages of one list together: once it is spent, each further
	// message keeps minRowMessage bytes (the rows in trouble come first and keep theirs whole).
	rowMessageBudget = 8 * 1024
	minRowMessage    = 128
)

// bounded returns at most limit items of list, those for which first is true ahead of the
// others (each group in its own order), and how many it left out. first may be nil.
func bounded[T any](list []T, limit int, first func(T) bool) ([]T, int32) {
	if len(list) <= limit {
		return list, 0
	}
	out := make([]T, 0, limit)
	if first != nil {
		for _, x := range list {
			if len(out) < limit && first(x) {
				out = append(out, x)
			}
		}
	}
	for _, x := range list {
		if len(out) < limit && (first == nil || !first(x)) {
			out = append(out, x)
		}
	}
	return out, int32(len(list) - limit)
}

func trimTo(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// messageBudget hands out the bytes of rowMessageBudget to the messages of one list in order.
type messageBudget int

func (b *messageBudget) trim(s string) string {
	s = trimTo(s, max(minRowMessage, min(maxRowMessage, rowMessageBudget-int(*b))))
	*b += messageBudget(len(s))
	return s
}
