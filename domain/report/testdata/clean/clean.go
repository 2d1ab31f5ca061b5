package clean

// Total sums line items in cents.
func Total(items []int64) (t int64) {
	for _, i := range items {
		t += i
	}
	return t
}
