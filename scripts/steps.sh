# Step headers that say how long each step took, for scripts/test-all and scripts/test-bindings.
# Source it, call `step NAME` before each part, and `steps_done LABEL` at the end (from an EXIT
# trap, so that a failing run still prints the times of the steps it went through).
STEPS_STARTED=$SECONDS
STEP_NAME=""
STEP_STARTED=$SECONDS

step() {
  step_finished
  STEP_NAME="$*"
  STEP_STARTED=$SECONDS
  printf '\n==> %s\n' "$*"
}

step_finished() {
  if [ -n "$STEP_NAME" ]; then
    printf '<== %s: %d s\n' "$STEP_NAME" $((SECONDS - STEP_STARTED))
    STEP_NAME=""
  fi
}

steps_done() {
  step_finished
  printf '\n%s: %d s in all\n' "${1:-steps}" $((SECONDS - STEPS_STARTED))
}
