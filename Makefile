# Every target creates or refreshes .venv first (Python >= 3.12, found automatically).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit faults soak bench k8s venv clean

demo: venv  ## the whole stack on embedded defaults, and a demo call through it
	$(BIN)/s2s up

test: venv lint typecheck  ## lint, type-check and run the whole test suite
	$(BIN)/pytest --durations=15

lint: venv
	$(BIN)/ruff check src tests actors deployments benchmarks
	$(BIN)/ruff format --check src tests actors deployments benchmarks

typecheck: venv
	$(BIN)/mypy

unit: venv  ## the fast tests only (no subprocesses or servers beyond loopback emulators)
	$(BIN)/pytest tests/unit

faults: venv  ## the fault matrix only: actors killed and frozen, nodes lost, Redis paused and restarted
	$(BIN)/pytest -m fault -s

soak: venv  ## 20 real-time calls for 10 minutes, a fault every 30 s (SOAK_MINUTES, SOAK_CALLS)
	S2S_SOAK_MINUTES=$(or $(SOAK_MINUTES),10) S2S_SOAK_CALLS=$(or $(SOAK_CALLS),20) \
		$(BIN)/pytest tests/service/test_soak.py -s

bench: venv  ## concurrent real-time calls through each ingress path vs a direct floor, 8 kHz calls, Twilio calls
	$(BIN)/python -m benchmarks.sessions --sessions 10,20,30,40,50 --seconds 20 --ingress haproxy,proxy,direct --output docs/benchmarks.md
	$(BIN)/python -m benchmarks.sessions --sessions 10,20,30,40,50 --seconds 20 --ingress haproxy --rate 8000 --output docs/benchmarks.md
	$(BIN)/python -m benchmarks.phone --sessions 10,20 --seconds 20 --output docs/benchmarks.md

k8s: venv  ## regenerate k8s/**/generated/ from config.yaml (serveConfigV2, the pods' ConfigMap)
	$(BIN)/s2s k8s render

venv:
	@scripts/bootstrap >/dev/null

clean:
	rm -rf $(VENV) demo-output .mypy_cache .pytest_cache .ruff_cache
