package trakkar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// DefaultLeaseSeconds is assumed when Trakkar omits lease_seconds (or sends a
// non-positive value), so heartbeat timing never divides a zero lease.
const DefaultLeaseSeconds = 60

// decodeJSON unmarshals a 2xx body. encoding/json ignores unknown fields (the
// contract is forward compatible) and reports wrong types as errors.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("decode response: empty body")
	}
	if trimmed[0] != '{' {
		return errors.New("decode response: body is not a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

func decodeAgent(body []byte) (Agent, error) {
	var env struct {
		Agent *Agent `json:"agent"`
	}
	if err := decodeJSON(body, &env); err != nil {
		return Agent{}, err
	}
	if env.Agent == nil {
		return Agent{}, errors.New(`decode response: missing "agent"`)
	}
	if env.Agent.ID == "" {
		return Agent{}, errors.New("decode response: agent has no id")
	}
	return *env.Agent, nil
}

func decodeRuns(body []byte) ([]Run, error) {
	var env struct {
		Runs *[]Run `json:"runs"`
	}
	if err := decodeJSON(body, &env); err != nil {
		return nil, err
	}
	if env.Runs == nil {
		return nil, errors.New(`decode response: missing "runs"`)
	}
	runs := *env.Runs
	for i, r := range runs {
		if r.ID == "" {
			return nil, fmt.Errorf("decode response: run %d has no id", i)
		}
	}
	if runs == nil {
		runs = []Run{}
	}
	return runs, nil
}

func decodeClaim(body []byte) (Claim, error) {
	var env struct {
		Run          *Run  `json:"run"`
		Task         *Task `json:"task"`
		LeaseSeconds int   `json:"lease_seconds"`
	}
	if err := decodeJSON(body, &env); err != nil {
		return Claim{}, err
	}
	if env.Run == nil || env.Run.ID == "" {
		return Claim{}, errors.New(`decode response: missing "run"`)
	}
	if env.Task == nil || env.Task.ID == "" {
		return Claim{}, errors.New(`decode response: missing "task"`)
	}
	return Claim{Run: *env.Run, Task: *env.Task, LeaseSeconds: leaseOrDefault(env.LeaseSeconds)}, nil
}

func decodeHeartbeat(body []byte) (HeartbeatReply, error) {
	var hb HeartbeatReply
	if err := decodeJSON(body, &hb); err != nil {
		return HeartbeatReply{}, err
	}
	hb.LeaseSeconds = leaseOrDefault(hb.LeaseSeconds)
	return hb, nil
}

func decodeAcked(body []byte) (int64, error) {
	var env struct {
		AckedSeq *int64 `json:"acked_seq"`
	}
	if err := decodeJSON(body, &env); err != nil {
		return 0, err
	}
	if env.AckedSeq == nil {
		return 0, errors.New(`decode response: missing "acked_seq"`)
	}
	if *env.AckedSeq < 0 {
		return 0, fmt.Errorf("decode response: negative acked_seq %d", *env.AckedSeq)
	}
	return *env.AckedSeq, nil
}

func decodeRun(body []byte) (Run, error) {
	var env struct {
		Run *Run `json:"run"`
	}
	if err := decodeJSON(body, &env); err != nil {
		return Run{}, err
	}
	if env.Run == nil || env.Run.ID == "" {
		return Run{}, errors.New(`decode response: missing "run"`)
	}
	return *env.Run, nil
}

func leaseOrDefault(s int) int {
	if s <= 0 {
		return DefaultLeaseSeconds
	}
	return s
}
