// A cold function (format: default): Ferrite runs this program once per
// call, in a fresh container. The request body is stdin, stdout is the
// answer, stderr is the call's log, and the exit status is the outcome.
// Per-call facts (METHOD, REQUEST_URL, HEADER_*, ...) and the app's and
// route's config keys are environment variables.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read the request:", err)
		os.Exit(1)
	}
	name := nameIn(body)
	// A config key (ferrite apps config set APP GREETING Hi) arrives as an
	// environment variable.
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	fmt.Fprintln(os.Stderr, "greeting", name)
	fmt.Printf("%s, %s!\n", greeting, name)
}

// nameIn reads {"name":"Ada"}; a missing, empty or unreadable name greets
// the World.
func nameIn(body []byte) string {
	var input map[string]any
	if json.Unmarshal(body, &input) == nil {
		if name, ok := input["name"].(string); ok && name != "" {
			return name
		}
	}
	return "World"
}
