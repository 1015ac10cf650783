package hist_test

import (
	"fmt"

	"github.com/tailorhq/tailor/bench/hist"
)

func ExampleHistogram() {
	var h hist.Histogram
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1000) // 1µs .. 1ms
	}
	fmt.Println(h.Count(), h.Min(), h.Max())
	fmt.Println(h.Quantile(0.5), h.Quantile(0.99))
	// Output:
	// 1000 1000 1000000
	// 501759 991231
}
