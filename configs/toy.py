"""Toy zoo, stage 2: sized for a 2-core CPU and the zoo's 64x64 images.

The geometry mirrors the paper's (upsample, then many small random crops), at a
quarter of the scale: 64 px images -> 128 px -> crops of 32 px.
"""
class_names = ("real", "dcgan", "progan", "bilinear", "subpixel")
num_workers = 2
input_filter = "highpass" # not the paper: on raw crops the toy zoo's photo content drowns the traces
#                           in a CPU budget (README, "Why the toy configs filter their input")
width = 32                # a quarter of the FLOPs of w = 64; same structure
batch_size = 8            # 8 items x 5 classes = 40 images a step
val_batch_size = 64
crop_size = 64            # zoo images are 64x64 (square: never cropped)
resize_size = 128         # 2x upsampling, like the paper's 4x
multi_size = 32
crop_num = 8
learning_rate = 1e-3      # fewer steps than the paper: a larger lr converges in time
lr_step_size = 100
iters_per_epoch = 50      # short epochs: validation (and a checkpoint) every 50 steps
max_epochs = 10           # 500 steps (with precise BatchNorm the validation accuracy still rose after 300)
early_stop_bar = 3
bn_recalibrate_batches = 10   # precise BatchNorm before each validation (README, "Stage 1 on the toy zoo")
save_interval = 2
