"""A fake pynvml module for tests: scenarios named after real failures."""

import types


class NVMLError(Exception):
    pass


class FakeNVML:
    """A stand-in for the pynvml module. Scenarios are named after real failures."""

    NVMLError = NVMLError

    def __init__(self, gpus=(), init_error=None, lost=(), driver="550.54.15", cuda=12040, no_cc=(),
                 util=(), used_frac=0.0, fail_after=None, no_power=False):
        self.gpus, self.init_error, self.lost, self.driver, self.cuda, self.no_cc = list(gpus), init_error, set(lost), driver, cuda, set(no_cc)
        self.util, self.used_frac, self.fail_after, self.no_power = list(util), used_frac, fail_after, no_power
        self.shutdowns = self.readings = 0

    def nvmlInit(self):
        if self.init_error:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        if i in self.lost:
            raise NVMLError("GPU is lost")
        return i

    def nvmlDeviceGetName(self, h):
        return self.gpus[h][0].encode()  # older bindings return bytes

    def nvmlDeviceGetMemoryInfo(self, h):
        total = self.gpus[h][1]
        used = int(total * self.used_frac)
        return types.SimpleNamespace(total=total, free=total - used if self.used_frac else total // 2, used=used)

    def nvmlDeviceGetCudaComputeCapability(self, h):
        if h in self.no_cc:
            raise NVMLError("Not Supported")
        return self.gpus[h][2]

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h:04d}-aaaa"

    # -- readings the Monitor samples
    def nvmlDeviceGetUtilizationRates(self, h):
        self.readings += 1
        if self.fail_after is not None and self.readings > self.fail_after:
            raise NVMLError("GPU is lost")
        return types.SimpleNamespace(gpu=self.util[h] if h < len(self.util) else 0, memory=0)

    def nvmlDeviceGetPowerUsage(self, h):
        if self.no_power:
            raise NVMLError("Not Supported")
        return 250_000


GiB = 2**30
A100 = ("NVIDIA A100-SXM4-80GB", 80 * GiB, (8, 0))
