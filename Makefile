# How ChatGPT Learns -- two commands:
#   make lab    set up (first time only) and open the course in JupyterLab
#   make test   set up (first time only) and run every test and notebook
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test setup data checkpoints speedrun lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

lab: $(STAMP)
	$(BIN)/python -m utils.lab

test: $(STAMP)
	$(BIN)/python -m ruff check utils tests bench notebooks
	$(BIN)/nbstripout --verify notebooks/*.ipynb
	$(BIN)/python -m pytest tests -q
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1200 notebooks -q --durations=15

data: $(STAMP)
	$(BIN)/python -m utils.build data tokenizer

checkpoints: $(STAMP)
	$(BIN)/python -m utils.build

# The whole recipe from nothing (world, tokenizer, pretraining, SFT, reward model, PPO) with a
# report card in runs/speedrun/: 4.2 min on 2 cores with AMX (Intel), 6.4 min without (AMD).
speedrun: $(STAMP)
	$(BIN)/python -m utils.speedrun

lint: $(STAMP)
	$(BIN)/python -m ruff check utils tests bench notebooks

clean:
	rm -rf $(VENV)
