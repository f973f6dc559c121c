"""The speed options of the solvers (issue 19) on the CPU: the compiled path equals the eager one, fused Adam and the
precisions agree with the defaults, the device-aware chunk never exceeds the CUDA memory it queries (mocked), and the
solver loops read nothing back from the device per step."""
import collections
import pytest
import torch
from torch import nn
from conftest import tiny_generator
from genprior_nb.operators import CompressedSensing, RandomInpainting, Identity
from genprior_nb.generators import LinearGenerator, autocast_generator
from genprior_nb import latent_opt
from genprior_nb.latent_opt import (csgm, sparse_deviation, soft_constraint, pgd_gan, solver_precision, problem_bytes,
                                    default_chunk, CPU_CHUNK)

@pytest.fixture(scope='module')
def problem():
    G = tiny_generator('vae', 4, 8)
    op = CompressedSensing(40, seed=0)
    x = G(torch.randn(5, 4, generator=torch.Generator().manual_seed(1)))
    return G, op, op.measure(x, 0.05, seed=0)

RUNS = {'csgm': lambda y, op, G, **kw: csgm(y, op, G, restarts=3, steps=30, chunk=6, **kw),   # 2 images per pass, pruned
        'sparse_deviation': lambda y, op, G, **kw: sparse_deviation(y, op, G, basis='dct', restarts=2, warmup_steps=10, steps=15, **kw),
        'soft_constraint_tv': lambda y, op, G, **kw: soft_constraint(y, op, G, tv=0.02, restarts=2, warmup_steps=10, steps=15, **kw)}

@pytest.mark.parametrize('method', list(RUNS))
def test_compiled_path_is_bitwise_the_eager_path(method, problem):
    "compile='aot_eager' traces the objective's forward and backward graphs (as every compile mode does) and runs them op by op: bitwise equal."
    G, op, y = problem
    eager, traced = RUNS[method](y, op, G), RUNS[method](y, op, G, compile='aot_eager')
    for k in ('x', 'z', 'misfit', 'history'): assert torch.equal(getattr(eager, k), getattr(traced, k)), k

def test_fused_adam_and_settings(problem):
    G, op, y = problem
    ref = csgm(y, op, G, restarts=3, steps=30)
    assert ref.extra['settings'] == dict(chunk=CPU_CHUNK, precision='fp32', compile=None, fused=False), "CPU defaults as before"
    f = csgm(y, op, G, restarts=3, steps=30, fused=True)
    assert f.extra['settings']['fused'] is True
    torch.testing.assert_close(f.x, ref.x, rtol=0, atol=1e-5)   # fused Adam: the same update, other rounding
    torch.testing.assert_close(f.history, ref.history, rtol=1e-4, atol=1e-5)

def test_precisions(problem):
    G, op, y = problem
    ref = csgm(y, op, G, restarts=2, steps=20)
    assert torch.equal(csgm(y, op, G, restarts=2, steps=20, precision='tf32').x, ref.x), "tf32 changes nothing off CUDA"
    b = csgm(y, op, G, restarts=2, steps=20, precision='bf16')
    assert torch.equal(b.x, csgm(y, op, autocast_generator(G), restarts=2, steps=20).x), "bf16 = the autocast generator"
    assert b.extra['settings']['precision'] == 'bf16' and not torch.equal(b.x, ref.x)
    with pytest.raises(ValueError, match="precision must be one of"): csgm(y, op, G, precision='fp16')
    with pytest.raises(ValueError, match="compile must be one of"): csgm(y, op, G, compile='fast')

class _OnCuda(nn.Module):
    "A module that says it lives on CUDA (module_device reads `device`): what solver_precision sees for a GPU generator."
    device = torch.device('cuda')
    latent_dim = 2

def test_tf32_flags_set_inside_and_restored():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with solver_precision(_OnCuda()) as g:   # None: the CUDA default, tf32
            assert isinstance(g, _OnCuda) and torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
        with pytest.raises(RuntimeError, match='boom'):
            with solver_precision(_OnCuda(), 'tf32'): raise RuntimeError('boom')
        assert not torch.backends.cuda.matmul.allow_tf32, "restored after an error too"
        with solver_precision(_OnCuda(), 'fp32'): assert not torch.backends.cuda.matmul.allow_tf32
    finally: torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before

def test_problem_bytes_closed_form():
    "G(z) = W z with frozen W and A = I: autograd saves only the residual that pow(2) squares, 784 floats per code."
    G = LinearGenerator(torch.randn(784, 3)).requires_grad_(False)
    assert problem_bytes(G, Identity()) == 2 * 784 * 4 + 16 * (784 + 784)
    # a conv generator saves its activations: more per code, and bf16 autocast saves about half of them
    V = tiny_generator('vae', 4, 16); op = Identity()
    assert problem_bytes(V, op) > 2 * problem_bytes(G, op) and problem_bytes(autocast_generator(V), op) < problem_bytes(V, op)

def _mock_cuda(monkeypatch, free, reserved=0, allocated=0):
    monkeypatch.setattr(torch.cuda, 'mem_get_info', lambda dev=None: (free, 150 * 2**30))
    monkeypatch.setattr(torch.cuda, 'memory_reserved', lambda dev=None: reserved)
    monkeypatch.setattr(torch.cuda, 'memory_allocated', lambda dev=None: allocated)

@pytest.mark.parametrize('free', [10**6, 3 * 10**8, 8 * 2**30, 140 * 2**30])
def test_default_chunk_never_exceeds_the_memory_it_queries(monkeypatch, free):
    G, op = tiny_generator('vae', 8, 64), CompressedSensing(150, seed=0)
    per = problem_bytes(G, op)
    _mock_cuda(monkeypatch, free, reserved=2**20, allocated=2**19)   # the caching allocator holds 0.5 MB unused
    usable = free + 2**20 - 2**19
    n = default_chunk(G, op, device='cuda')
    assert n == max(1, min(usable // 2 // per, (2**31 - 1) // latent_opt._saved_per_problem(G, op)[1]))
    assert n * per <= usable // 2 or n == 1
    assert n == 1 or (n + 1) * per > usable // 2 or n == (2**31 - 1) // latent_opt._saved_per_problem(G, op)[1]
    assert default_chunk(G, op, 0.25, device='cuda') * per <= usable // 4 or n == 1
    assert default_chunk(G, op) == CPU_CHUNK, "the CPU default is untouched"

def test_default_chunk_leaves_the_generator_alone(monkeypatch):
    "The memory probe runs a pass of the caller's generator: its modes, flags and batch-norm statistics come back unchanged."
    G = tiny_generator('wgan', 4, 8).train().requires_grad_(True)   # batch norm in training mode would update its statistics
    before = {k: v.clone() for k, v in G.state_dict().items()}
    _mock_cuda(monkeypatch, 10**9)
    assert default_chunk(G, Identity(), device='cuda') >= 1
    assert G.training and all(p.requires_grad for p in G.parameters())
    for k, v in G.state_dict().items(): assert torch.equal(v, before[k]), k

def test_largest_activation_stays_below_int32(monkeypatch):
    G, op = tiny_generator('vae', 8, 64), Identity()
    _mock_cuda(monkeypatch, 10**15)   # a petabyte: the element limit binds
    n, big = default_chunk(G, op, device='cuda'), latent_opt._saved_per_problem(G, op)[1]
    assert big >= 32 * 28 * 28 and n * big <= 2**31 - 1 < (n + 1) * big

_READS = ('item', '__bool__', 'tolist', '__float__', '__int__')

def _count_reads(monkeypatch):
    "Count host reads of tensor values (what synchronises with a GPU) made through the Tensor methods."
    n = collections.Counter()
    for name in _READS:
        orig = getattr(torch.Tensor, name)
        def read(self, *a, _o=orig, _n=name, **k): n[_n] += 1; return _o(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, read)
    return n

@pytest.mark.parametrize('method', ['csgm', 'sparse_deviation', 'soft_constraint_tv', 'pgd_gan'])
def test_no_host_reads_per_step(method, problem, monkeypatch):
    "With Adam's step counter on the device (fused, as on CUDA), the number of host reads does not grow with the steps."
    G, op, y = problem
    op.norm()   # computed once and cached
    run = {'csgm': lambda s: csgm(y, op, G, restarts=3, steps=s, fused=True),
           'sparse_deviation': lambda s: sparse_deviation(y, op, G, restarts=2, warmup_steps=s, steps=s, fused=True),
           'soft_constraint_tv': lambda s: soft_constraint(y, op, G, tv=0.02, restarts=2, warmup_steps=s, steps=s, fused=True),
           'pgd_gan': lambda s: pgd_gan(y, op, G, restarts=2, outer=s, inner=2, fused=True)}[method]
    n = _count_reads(monkeypatch)
    run(10); short = dict(n); n.clear()
    run(40); assert dict(n) == short and sum(short.values()) <= 3, (short, dict(n))

# ---------------------------------------------------------------- TV (Chambolle-Pock) and FISTA

from genprior_nb import baselines
from genprior_nb.baselines import tv_reconstruct, lasso, TVPrimalDual

@pytest.fixture(scope='module')
def classical():
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    inp, cs = RandomInpainting(0.3, seed=0), CompressedSensing(120, seed=0)
    return inp, inp.measure(x, 0.05, seed=0), cs, cs.measure(x, 0.05, seed=0)

def _tv(inp, y, **kw):
    pd = TVPrimalDual(y, inp, 0.03, step_ratio=baselines.tv_step_ratio(0.03), **kw)
    return pd.run(2000, tol=1e-3), pd.iterations

def test_queued_stopping_checks_stop_where_checking_every_time_does(classical, monkeypatch):
    "With the checks read in groups (as on a GPU) the result and the iteration count are those of reading every check."
    inp, yi, cs, yc = classical
    x1, it1 = _tv(inp, yi); l1 = lasso(yc, cs, 0.02, 'dct', n_iter=400, tol=1e-4)
    monkeypatch.setattr(baselines, 'host_check_every', lambda device: 3)
    x3, it3 = _tv(inp, yi); l3 = lasso(yc, cs, 0.02, 'dct', n_iter=400, tol=1e-4)
    assert 50 < it1 < 2000 and it3 == it1 and torch.equal(x3, x1)
    assert torch.equal(l3, l1)

def test_compiled_tv_and_fista_equal_eager(classical):
    "Traced steps ('aot_eager'; numbers enter as float64 tensors) against the eager steps (Python floats): bitwise equal."
    inp, yi, cs, yc = classical
    x1, it1 = _tv(inp, yi); x2, it2 = _tv(inp, yi, compile='aot_eager')
    assert it2 == it1 and torch.equal(x2, x1)
    for basis in ('dct', 'haar'):
        assert torch.equal(lasso(yc, cs, 0.02, basis, n_iter=150, tol=1e-4, compile='aot_eager'),
                           lasso(yc, cs, 0.02, basis, n_iter=150, tol=1e-4)), basis

def test_tv_and_fista_read_nothing_per_iteration(classical, monkeypatch):
    "Checks queued without bound (never read until the end): the host reads do not grow with the iterations."
    inp, yi, cs, yc = classical
    monkeypatch.setattr(baselines, 'host_check_every', lambda device: 10**9)
    n = _count_reads(monkeypatch)
    reads = []
    for it in (200, 800):
        tv_reconstruct(yi, inp, 0.03, n_iter=it, tol=1e-12); lasso(yc, cs, 0.02, 'dct', n_iter=it, tol=1e-12)
        reads.append(dict(n)); n.clear()
    assert reads[0] == reads[1], reads

# ---------------------------------------------------------------- training: logs read back at log steps only

from genprior_nb import train
from genprior_nb.train import fit, TrainingDivergedError, BatchStream, host_to_device
from genprior_nb.core import safe_torch_load

def _lin_run(tmp_path, bad_step=None, log_every=3, steps=10):
    torch.manual_seed(0)
    lin = nn.Linear(3, 1); opt = torch.optim.SGD(lin.parameters(), lr=0.1); xb = torch.randn(8, 3)
    def train_step(step, gen):
        loss = (lin(xb) - 1).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
        if step == bad_step: loss = loss * float('nan')
        return {'loss': loss.detach(), 'half': loss.detach() / 2}
    p = tmp_path/'ck.pt'
    h = fit({'m': lin}, {'opt': opt}, train_step, steps, ckpt_path=p, ckpt_every=2, progress=False, log_every=log_every)
    return h, p

def test_device_logs_are_read_at_log_steps_with_the_same_history(tmp_path, monkeypatch):
    ref, _ = _lin_run(tmp_path/'a')
    reads = []
    orig = train._host_logs
    monkeypatch.setattr(train, '_on_device', lambda logs: True)   # as if the losses lived on a GPU
    monkeypatch.setattr(train, '_host_logs', lambda entries: reads.append(len(entries)) or orig(entries))
    h, _ = _lin_run(tmp_path/'b')
    assert {k: h[k] for k in ('step', 'loss', 'half')} == {k: ref[k] for k in ('step', 'loss', 'half')}
    assert sum(reads) == 10 and len(reads) < 10, reads   # every step's logs read, several steps per transfer

def test_deferred_nonfinite_loss_still_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(train, '_on_device', lambda logs: True)
    with pytest.raises(TrainingDivergedError, match='non-finite at step 5'):
        _lin_run(tmp_path, bad_step=5, log_every=50)   # read before the checkpoint of step 6, not at a log step
    fct_ck = safe_torch_load(tmp_path/'ck.pt')
    assert fct_ck['step'] == 4

def test_host_to_device_and_batch_order():
    t = torch.randn(4, 3)
    like = torch.zeros((), dtype=torch.float64)
    assert torch.equal(host_to_device(t, like), t.double())
    data = torch.arange(20.)[:, None]
    assert torch.equal(BatchStream(data, 4, seed=3)[7], BatchStream(data.clone(), 4, seed=3)[7])
