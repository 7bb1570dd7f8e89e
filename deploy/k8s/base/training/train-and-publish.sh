#!/bin/sh
# Weekly training: pull the serving encoder, train on the joined traces, publish the bundle
# to the canary channel. Promotion to stable stays a deliberate step
# (python -m trainer promote ...; see deploy/README.md).
set -eu
work=/work
python -m trainer pull --registry "$ROUTEIQ_REGISTRY" --channel "$ROUTEIQ_CHANNEL" --dest "$work/serving"
python -m trainer train --router "$ROUTEIQ_ROUTER" --data "$ROUTEIQ_TRAIN_DATA" \
  --encoder "$work/serving/encoder" --out "$work/out"
bundle=$(ls -td "$work"/out/*/ | head -n 1)
python -m trainer publish --registry "$ROUTEIQ_REGISTRY" --channel "$ROUTEIQ_PUBLISH_CHANNEL" "$bundle"
