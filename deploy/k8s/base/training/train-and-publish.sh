#!/bin/sh
# Weekly training: pull the serving encoder, train on the joined traces, publish the bundle
# and point the canary channel at it (quality-gated). Promotion to stable stays a deliberate
# step (routeiq-trainer promote --version V --channel stable; see deploy/README.md).
set -eu
work=/work
python -m trainer pull --registry "$ROUTEIQ_REGISTRY" --channel "$ROUTEIQ_CHANNEL" --dest "$work/serving"
python -m trainer train --router "$ROUTEIQ_ROUTER" --data "$ROUTEIQ_TRAIN_DATA" \
  --encoder "$work/serving/encoder" --out "$work/out"
bundle=$(ls -td "$work"/out/*/ | head -n 1)
# publish stores the encoder the bundle names from the `encoder` folder beside the bundle.
ln -sfn "$work/serving/encoder" "$work/out/encoder"
python -m trainer publish --registry "$ROUTEIQ_REGISTRY" --bundle "$bundle" \
  --promote "$ROUTEIQ_PUBLISH_CHANNEL"
