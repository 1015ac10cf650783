package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/httpapi"
	"github.com/tailorhq/tailor/rules"
)

// ExampleNew serves an engine over HTTP and creates a profile the way
// Ninetailed's clients do (a text/plain JSON body).
func ExampleNew() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: audience-pro-plan
    when: traits.plan == "pro"
`))
	if err != nil {
		panic(err)
	}
	eng, err := engine.Open("", &engine.Options{InMemory: true, Rules: set})
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	srv := httptest.NewServer(httpapi.New(eng, httpapi.Options{Org: "my-org"}))
	defer srv.Close()

	body := `{"events":[{"type":"identify","userId":"jane","traits":{"plan":"pro"}}]}`
	resp, err := http.Post(srv.URL+"/v2/organizations/my-org/environments/main/profiles/visitor-1",
		"text/plain", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Data    engine.Response `json:"data"`
		Message string          `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, answer.Message, answer.Data.Profile.ID, answer.Data.Profile.Audiences)
	// Output: 200 ok visitor-1 [audience-pro-plan]
}
