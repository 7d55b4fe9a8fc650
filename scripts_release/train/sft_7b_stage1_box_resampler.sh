#!/usr/bin/env bash
# Upstream's stage-1 release recipe (scripts_release/train/sft_7b_stage1_box_resampler.sh) with vreflect:
# BCM training from Qwen2.5-VL-7B-Instruct, 2500 steps, lr 1e-5 cosine (3% warmup), weight decay 0.1, gradient
# accumulation 8, clip 1.0, packing 4 x 4096, lambda 0.5, 8 latent tokens, images 128..5120 merged tokens, bf16,
# checkpoints every 300 steps (keep 10). Upstream ran 8 GPUs (up to 256 samples per optimizer step); one process
# here sees 1/8 of that per step unless you raise --gradient-accumulation-steps to 64.
#   MODEL_PATH   base checkpoint (default ./Qwen2.5-VL-7B-Instruct; its tokenizer must hold the 4 LVR tokens)
#   DATA_PATH    meta JSON (default data/meta_data_lvr_sft_stage1.json)
#   IMAGE_FOLDER image root (default data/images)
#   OUTPUT_DIR   default result/box_resampler/SFT_box_resampler_steps2500_b4_resampler0.5_acc8_latent8_lr1e-05
set -euo pipefail
MODEL_PATH=${MODEL_PATH:-./Qwen2.5-VL-7B-Instruct}
DATA_PATH=${DATA_PATH:-data/meta_data_lvr_sft_stage1.json}
IMAGE_FOLDER=${IMAGE_FOLDER:-data/images}
OUTPUT_DIR=${OUTPUT_DIR:-result/box_resampler/SFT_box_resampler_steps2500_b4_resampler0.5_acc8_latent8_lr1e-05}
VREFLECT=${VREFLECT:-npx vreflect}
RESUME=()
[ -n "${CHECKPOINT_PATH:-}" ] && RESUME=(--resume "$CHECKPOINT_PATH")

$VREFLECT train-stage1 --model "$MODEL_PATH" --data-path "$DATA_PATH" --image-folder "$IMAGE_FOLDER" \
  --output-dir "$OUTPUT_DIR" --max-steps 2500 --learning-rate 1e-5 --lr-scheduler cosine --warmup-ratio 0.03 \
  --weight-decay 0.1 --gradient-accumulation-steps 8 --per-device-batch-size 1 --max-grad-norm 1.0 \
  --enable-data-packing true --lambda-resampler 0.5 --latent-tokens 8 \
  --image-min-pixels 100352 --image-max-pixels 4014080 --dtype bf16 --seed 42 \
  --save-steps 300 --save-total-limit 10 ${DEVICE:+--device "$DEVICE"} "${RESUME[@]}"
