"""GANs in the wild: 11 classes, images resized twice (released values)."""
learning_rate = 1e-3
lr_step_size = 2500
batch_size = 16           # 16 items x 11 classes = 176 images a step
class_num = 11
class_names = ("Real", "ProGAN-128", "MMDGAN-128", "SNGAN-128", "InfoMaxGAN-128",
               "StackGAN2-256", "ProGAN-256", "CycleGAN-256", "StyleGAN2-256",
               "StyleGAN-1024", "StyleGAN2-1024")
resize_size = 128         # sources differ in size: bring all to 128 first ...
second_resize_size = 512  # ... then upsample as in the other experiments
metric = "f1"             # classes are imbalanced: select by macro-F1
