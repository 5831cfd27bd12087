"""Epoch / iteration bookkeeping of a training run: where it is, when to print, display and save, and how
fast it goes. Counts are in images, as in SPADE (`--print_freq 100` = every 100 images)."""
import time


def format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


class IterationCounter:
    def __init__(self, opt, dataset_size: int, first_epoch: int = 1, epoch_iter: int = 0, total_steps: int = 0):
        self.opt = opt
        self.batch_size = opt.batchSize
        self.images_per_epoch = (dataset_size // opt.batchSize) * opt.batchSize  # the last partial batch is dropped
        self.total_epochs = opt.niter + opt.niter_decay
        if self.images_per_epoch and epoch_iter >= self.images_per_epoch:  # saved at the very end of an epoch
            first_epoch, epoch_iter = first_epoch + 1, 0
        self.first_epoch, self.epoch_iter, self.total_steps_so_far = first_epoch, epoch_iter, total_steps
        self.epoch = first_epoch
        self._window_start, self._window_images = time.time(), 0
        self._rate = None

    def training_epochs(self):
        return range(self.first_epoch, self.total_epochs + 1)

    def record_epoch_start(self, epoch: int):
        self.epoch = epoch
        self.epoch_start_time = time.time()
        if epoch != self.first_epoch:
            self.epoch_iter = 0

    def record_one_iteration(self):
        """Call after the G and D steps of a batch are done."""
        self.total_steps_so_far += self.batch_size
        self.epoch_iter += self.batch_size
        self._window_images += self.batch_size

    def record_epoch_end(self):
        return time.time() - self.epoch_start_time

    def _crossed(self, freq: int) -> bool:
        return self.total_steps_so_far % freq < self.batch_size

    def needs_printing(self):
        return self._crossed(self.opt.print_freq)

    def needs_displaying(self):
        return self._crossed(self.opt.display_freq)

    def needs_saving(self):
        return self._crossed(self.opt.save_latest_freq)

    def images_per_second(self):
        """Speed since the previous call (the print interval)."""
        now = time.time()
        elapsed = now - self._window_start
        if self._window_images and elapsed > 0:
            self._rate = self._window_images / elapsed
        self._window_start, self._window_images = now, 0
        return self._rate or 0.0

    def eta_seconds(self, rate: float):
        remaining = (self.total_epochs - self.epoch) * self.images_per_epoch + (self.images_per_epoch - self.epoch_iter)
        return remaining / rate if rate > 0 else float("nan")

    def progress(self):
        """-> ('| epoch 3/10, 120/200 images | 14.2 img/s | ETA 0:04:10', seconds per image), measured since the
        previous call."""
        rate = self.images_per_second()
        eta = self.eta_seconds(rate)
        eta_text = format_seconds(eta) if eta == eta else "?"
        text = (f"| epoch {self.epoch}/{self.total_epochs}, {self.epoch_iter}/{self.images_per_epoch} images "
                f"| {rate:.1f} img/s | ETA {eta_text}")
        return text, (1.0 / rate if rate else 0.0)
