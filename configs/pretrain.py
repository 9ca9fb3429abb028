"""Stage 1: pre-training on 170 image transformations (released values)."""
learning_rate = 1e-4
lr_step_size = 500
batch_size = 128          # one transformed image per item
class_num = 170           # one class per transformation of data.transforms (SPEC section 5)
class_names = ()          # filled with the transformation names at run time
max_epochs = 50
save_interval = 1         # snapshot every epoch
metric = "f1"
