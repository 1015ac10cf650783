package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// npmDir holds the pinned npm packages (package.json, package-lock.json)
// and the client script.
const npmDir = "testdata/npm"

// npmResult is what testdata/npm/client.js prints after its own asserts.
type npmResult struct {
	Created struct {
		ID          string   `json:"id"`
		Audiences   []string `json:"audiences"`
		Experiences []string `json:"experiences"`
	} `json:"created"`
	Located engine.Location `json:"located"`
	Updated struct {
		Audiences []string `json:"audiences"`
		Changes   []string `json:"changes"`
	} `json:"updated"`
	Got struct {
		ID        string   `json:"id"`
		Audiences []string `json:"audiences"`
	} `json:"got"`
	Merge struct {
		Anonymous string   `json:"anonymous"`
		Survivor  string   `json:"survivor"`
		Audiences []string `json:"audiences"`
	} `json:"merge"`
	Many []struct {
		ID        string   `json:"id"`
		Audiences []string `json:"audiences"`
	} `json:"many"`
	Node struct {
		ID        string   `json:"id"`
		Audiences []string `json:"audiences"`
	} `json:"node"`
}

// TestNPMClient drives Ninetailed's published clients
// (@ninetailed/experience.js-shared 7.26.0 and @ninetailed/experience.js-node
// 7.23.0, pinned in testdata/npm/package-lock.json) against the real handler
// and engine. It installs the packages with `npm ci` when node_modules is
// missing and skips only when node itself is not installed (and fails
// instead when TAILOR_REQUIRE_NODE is set, as CI should).
func TestNPMClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("TAILOR_REQUIRE_NODE") != "" {
			t.Fatal("TAILOR_REQUIRE_NODE is set but node is not installed")
		}
		t.Skip("node is not installed; the published-client test needs Node.js 20+ and npm")
	}
	npmInstall(t)

	eng := openTestEngine(t, "testdata/rules.yaml", engine.Options{Locator: echoLocator{}})
	srv := httptest.NewServer(New(eng, Options{}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.js")
	cmd.Dir = npmDir
	cmd.Env = append(os.Environ(), "TAILOR_URL="+srv.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.js: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res npmResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("client result: %v\nstdout:\n%s", err, stdout.String())
	}

	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(res.Created.ID) {
		t.Errorf("created id %q is not 64 hex chars", res.Created.ID)
	}
	wantCreated := []string{"audience-new-visitors", "audience-german", "audience-californians"}
	if !slices.Equal(res.Created.Audiences, wantCreated) {
		t.Errorf("created audiences %v, want %v (rules order)", res.Created.Audiences, wantCreated)
	}
	if !slices.Equal(res.Created.Experiences, []string{"exp-hero-banner-test"}) {
		t.Errorf("created experiences %v", res.Created.Experiences)
	}
	if res.Located.City != "city@fr-CH" || res.Located.Region != "198.51.100.77" {
		t.Errorf("IP lookup %+v: the client's ip and locale options did not reach the locator", res.Located)
	}
	if !slices.Equal(res.Updated.Changes, []string{"cta-color", "pricing"}) {
		t.Errorf("updated changes %v", res.Updated.Changes)
	}
	if res.Merge.Survivor != res.Created.ID || res.Merge.Anonymous == res.Created.ID {
		t.Errorf("merge %+v: survivor should be the known profile %s", res.Merge, res.Created.ID)
	}
	if len(res.Many) != 2 || res.Many[0].ID != "batch-visitor-1" || res.Many[1].ID != "batch-visitor-2" {
		t.Errorf("upsertManyProfiles %+v", res.Many)
	}
	if res.Node.ID != "node-user-1" || !slices.Contains(res.Node.Audiences, "audience-buyers") {
		t.Errorf("node client %+v", res.Node)
	}

	// What the client saw is what the engine stored.
	ctxGet := context.Background()
	for _, id := range []string{res.Merge.Anonymous, res.Created.ID} {
		resp, err := eng.Get(ctxGet, id)
		if err != nil || resp.Profile.ID != res.Created.ID {
			t.Fatalf("engine Get(%s) = %+v, %v; want the survivor %s", id, resp, err, res.Created.ID)
		}
		if !slices.Equal(resp.Profile.Audiences, res.Merge.Audiences) {
			t.Errorf("engine audiences %v, client saw %v", resp.Profile.Audiences, res.Merge.Audiences)
		}
	}
	r, err := http.Get(srv.URL + "/v2/organizations/org-npm/environments/main/profiles/batch-visitor-2")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("GET batch-visitor-2: %s", r.Status)
	}
}

// echoLocator "resolves" every address to Switzerland with the locale in
// the city and the address in the region, so the client script can see that
// its ip and locale options reached the lookup.
type echoLocator struct{}

func (echoLocator) Locate(_ context.Context, ip netip.Addr, locale string) (engine.Location, error) {
	return engine.Location{City: "city@" + locale, Region: ip.String(), Country: "Switzerland", CountryCode: "CH"}, nil
}

// npmInstall runs `npm ci` in npmDir unless node_modules was installed
// from the current package-lock.json (npm records what it installed in
// node_modules/.package-lock.json, written after the lock it followed).
func npmInstall(t *testing.T) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(npmDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	installed, err := os.Stat(filepath.Join(npmDir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("node is installed but npm is not: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = npmDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", npmDir, err, out)
	}
}
