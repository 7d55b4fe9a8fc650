#!/usr/bin/env bash
# Upstream's stage-2 release recipe (scripts_release/train/sft_7b_stage2_distillation.sh) with vreflect: DAC
# distillation from a stage-1 checkpoint (BCM frozen as teacher), lr 1e-6, loss CE + 1.0 x (MSE + 1.0 x KL),
# checkpoints every 100 steps (keep 25); everything else as stage 1.
#   CHECKPOINT_PATH  the stage-1 checkpoint (required)
#   DATA_PATH, IMAGE_FOLDER, OUTPUT_DIR as in stage 1
set -euo pipefail
if [ -z "${CHECKPOINT_PATH:-}" ]; then
  echo "set CHECKPOINT_PATH to the stage-1 checkpoint directory" >&2
  exit 2
fi
DATA_PATH=${DATA_PATH:-data/meta_data_lvr_sft_stage1.json}
IMAGE_FOLDER=${IMAGE_FOLDER:-data/images}
OUTPUT_DIR=${OUTPUT_DIR:-result/stage2_distillation/SFT_stage2_distillation_steps2500_b4_LVR0.1_resampler0.5_attnTransfer1.0_acc8_latent8_lr1e-6}
VREFLECT=${VREFLECT:-npx vreflect}

$VREFLECT train-stage2 --model "$CHECKPOINT_PATH" --data-path "$DATA_PATH" --image-folder "$IMAGE_FOLDER" \
  --output-dir "$OUTPUT_DIR" --max-steps 2500 --learning-rate 1e-6 --lr-scheduler cosine --warmup-ratio 0.03 \
  --weight-decay 0.1 --gradient-accumulation-steps 8 --per-device-batch-size 1 --max-grad-norm 1.0 \
  --enable-data-packing true --lambda-resampler 1.0 --lambda-attn 1.0 --latent-tokens 8 \
  --image-min-pixels 100352 --image-max-pixels 4014080 --dtype bf16 --seed 42 \
  --save-steps 100 --save-total-limit 25 ${DEVICE:+--device "$DEVICE"}
