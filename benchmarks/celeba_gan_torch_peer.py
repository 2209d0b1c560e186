"""Peer yardstick for the VAE-GAN (configs/celeba_jmvae_kl_gan.flags) in PyTorch, run in the
peer venv: the paper's CelebA JMVAE-kl networks as ../shared/benchmarks/celeba_torch_peer.py
builds them, plus the discriminator C64R-C128BR-C256BR-C256BR-F-D1024R-D1 that this project's
VAE-GAN uses by default, trained as `jmvae_tf/models/jmvae_kl_gan.py` trains it: one forward
pass (a reconstruction from z ~ q(z|x,w), a fake from z ~ N(0, I), the discriminator on real,
reconstruction and fake), the image likelihood in the discriminator's feature space (the last
convolution's output), and three Adam optimisers (lr 1e-4, beta1 0.9) on disjoint groups:
encoders + attribute decoder (the JMVAE-kl loss, alpha 1, sum), the image decoder
(that feature likelihood + the generator loss), the discriminator (its loss). Batch 100 of
random faces and attributes; prints examples/s.

usage: PEER_VENV/bin/python benchmarks/celeba_gan_torch_peer.py [STEPS] [THREADS]
(never a dependency of jmvae-tf; benchmarks/celeba_step.py --model=jmvae_kl_gan runs it).
"""

import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
D = 128


def cbr(i, o, bn=True):
  return [nn.Conv2d(i, o, 4, 2, 1)] + ([nn.BatchNorm2d(o)] if bn else []) + [nn.ReLU()]


def img_trunk():  # C64R-C128BR-C256BR-C256BR-F
  return nn.Sequential(
    *cbr(3, 64, False), *cbr(64, 128), *cbr(128, 256), *cbr(256, 256), nn.Flatten()
  )


def att_trunk():  # D512R-D512BR
  return nn.Sequential(
    nn.Linear(40, 512), nn.ReLU(), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU()
  )


class Enc(nn.Module):
  def __init__(self, parts, width):
    super().__init__()
    self.parts = nn.ModuleList(parts)
    self.top = nn.Sequential(nn.Linear(width, 1024), nn.ReLU())
    self.mu, self.var = nn.Linear(1024, D), nn.Linear(1024, D)

  def forward(self, *xs):
    h = self.top(torch.cat([p(x) for p, x in zip(self.parts, xs)], 1))
    return self.mu(h), F.softplus(self.var(h)) + 1e-6


class ImgDec(nn.Module):
  def __init__(self):
    super().__init__()
    self.fc = nn.Sequential(nn.Linear(D, 4096), nn.ReLU())
    self.up = nn.Sequential(
      nn.ConvTranspose2d(256, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(),
      nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
      nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Tanh(),
    )  # fmt: skip

  def forward(self, z):
    return self.up(self.fc(z).view(-1, 256, 4, 4))


class Dis(nn.Module):  # C64R-C128BR-C256BR-C256BR-F-D1024R-D1: (logit, features)
  def __init__(self):
    super().__init__()
    self.features = img_trunk()
    self.classifier = nn.Sequential(nn.Linear(4096, 1024), nn.ReLU(), nn.Linear(1024, 1))

  def forward(self, x):
    h = self.features(x)
    return self.classifier(h)[:, 0], h


att_dec = nn.Sequential(
  nn.Linear(D, 4096), nn.ReLU(), nn.Linear(4096, 512), nn.BatchNorm1d(512), nn.ReLU(),
  nn.Linear(512, 40), nn.Tanh(),
)  # fmt: skip
qxw, qx, qw = (
  Enc([img_trunk(), att_trunk()], 4096 + 512),
  Enc([img_trunk()], 4096),
  Enc([att_trunk()], 512),
)
dx, dis = ImgDec(), Dis()
groups = [
  [*qxw.parameters(), *qx.parameters(), *qw.parameters(), *att_dec.parameters()],
  list(dx.parameters()),
  list(dis.parameters()),
]
opts = [torch.optim.Adam(g, 1e-4, betas=(0.9, 0.999)) for g in groups]


def kl(m1, v1, m2, v2):
  return 0.5 * (torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1).sum(1)


x = torch.rand(100, 3, 64, 64) * 2 - 1
w = torch.randint(0, 2, (100, 40)).float() * 2 - 1


def step():
  m, v = qxw(x, w)
  z = m + v.sqrt() * torch.randn_like(m)
  rec = dx(z)
  fake = dx(torch.randn_like(m))
  logit_real, f_real = dis(x)
  logit_rec, f_rec = dis(rec)
  logit_fake, _ = dis(fake)
  nll_x = 0.5 * ((f_real - f_rec) ** 2).sum(1) + 0.5 * f_real.shape[1] * math.log(2 * math.pi)
  nll_w = 0.5 * ((att_dec(z) - w) ** 2).sum(1)
  mx, vx = qx(x)
  mw, vw = qw(w)
  zeros, ones = torch.zeros_like(m), torch.ones_like(v)
  loss = (nll_x + nll_w + kl(m, v, zeros, ones) + kl(m, v, mx, vx) + kl(m, v, mw, vw)).mean()
  generator = F.softplus(-logit_rec) + F.softplus(-logit_fake)
  decoder_loss = (nll_x + generator).mean()
  dis_loss = (F.softplus(-logit_real) + F.softplus(logit_rec) + F.softplus(logit_fake)).mean()
  losses = (loss, decoder_loss, dis_loss)
  grads = [
    torch.autograd.grad(l, g, retain_graph=i < 2) for i, (l, g) in enumerate(zip(losses, groups))
  ]
  for opt, group, gs in zip(opts, groups, grads):
    for p, g in zip(group, gs):
      p.grad = g
    opt.step()


print("params", sum(p.numel() for g in groups for p in g))
for _ in range(3):
  step()
t = time.perf_counter()
for _ in range(steps):
  step()
dt = time.perf_counter() - t
print(
  f"torch {torch.__version__} CelebA JMVAE-kl VAE-GAN batch 100: {100 * steps / dt:.1f} examples/s"
)
