# The two commands of README.md. Both bootstrap (idempotently) .venv/ and the embedded ComfyUI in
# .comfyui/, or use COMFYUI_PATH (and COMFYUI_PYTHON) when set.
# FRONTEND=1.58.1 (or the environment's ZSNR_FRONTEND) serves that comfyui-frontend-package release
# instead of the host's own (tools/bootstrap.py, ensure_frontend).
PYTHON ?= python3
FRONTEND ?=
PYTEST_ARGS ?=
# The whole suite unless PYTEST_ARGS names test paths itself (make test PYTEST_ARGS="tests/unit -x").
TEST_PATHS = $(if $(filter tests/%,$(filter-out -%,$(PYTEST_ARGS))),,tests)

.PHONY: demo test lint bootstrap

demo:
	$(PYTHON) tools/bootstrap.py run tools/demo.py

test:
	$(if $(FRONTEND),ZSNR_FRONTEND=$(FRONTEND)) $(PYTHON) tools/bootstrap.py run --with-browser -m pytest $(TEST_PATHS) $(PYTEST_ARGS)

lint:
	$(PYTHON) tools/bootstrap.py run -m ruff check .

bootstrap:
	$(PYTHON) tools/bootstrap.py run -c "print('bootstrap complete')"
