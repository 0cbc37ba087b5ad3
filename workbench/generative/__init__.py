"""Generative models: the conditional VAE and GAN (class-conditional generators usable as data
sources) and the SimGAN-style refiner of rendered images, with their sample grids."""
