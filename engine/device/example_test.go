package device_test

import (
	"fmt"

	"github.com/tailorhq/tailor/engine/device"
)

func ExampleDetector_Detect() {
	d := device.New()
	for _, ua := range []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	} {
		dev := d.Detect(ua)
		fmt.Printf("%s %q %q\n", dev.Type, dev.OS, dev.Browser)
	}
	// Output:
	// mobile "iOS" "Safari"
	// desktop "Windows" "Edge"
	// bot "" ""
}
