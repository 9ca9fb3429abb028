"""Toy zoo, stage 1: transformation pre-training sized for a 2-core CPU."""
class_num = 170           # one class per transformation of data.transforms (SPEC section 5)
class_names = ()          # filled with the transformation names at run time
num_workers = 2
width = 32
batch_size = 32
val_batch_size = 64
pretrain_crop = 64        # zoo photos are cropped to 64 before transforming
resize_size = 128
multi_size = 32
crop_num = 8
learning_rate = 1e-3
lr_step_size = 100
max_epochs = 3            # 120 steps: a short stage 1 that fits the demo's time budget
early_stop_bar = 3
save_interval = 1
metric = "f1"
iters_per_epoch = 40
