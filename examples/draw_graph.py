"""Draw the graph that backpropagation through time walks.

With ``unroll=True`` an ``nn.RNN`` builds its forward pass from primitive ops, one small
graph per time step, chained through the hidden state. ``viz.to_dot`` writes that graph in
Graphviz's DOT language: a box per tensor (op, shape, dtype), parameters by name, and the ops
of each time step grouped in a dashed box "t = 1", "t = 2", "t = 3". Reading it top to
bottom is the forward pass; ``loss.backward()`` walks the same arrows bottom to top, through
t = 3, then t = 2, then t = 1: that is BPTT. W_hh has one arrow into every step, so its
gradient is a sum over time.

The default (fused) RNN is drawn too, for contrast: one node for the whole sequence, whose
backward is the same BPTT written out by hand.

Run it:  python examples/draw_graph.py [OUTPUT_DIR]
Writes runs/examples/draw_graph/rnn_graph.dot (and rnn_graph_fused.dot; another folder as the
first argument); with Graphviz installed also rnn_graph.png.
"""
import os
import shutil
import sys

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, viz

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("runs", "examples", "draw_graph")
os.makedirs(out_dir, exist_ok=True)

tg.manual_seed(0)
x = Tensor.randn(3, 1, 2)            # 3 time steps, batch of 1, 2 input features
target = Tensor.randn(1, 1, 3)       # the loss looks at the final state only

for unroll, name in ((True, "rnn_graph"), (False, "rnn_graph_fused")):
    tg.manual_seed(1)                # the same weights for both implementations
    rnn = nn.RNN(input_size=2, hidden_size=3, unroll=unroll)
    output, h_n = rnn(x)
    loss = ((h_n - target) ** 2).mean()

    # Draw before backward(): backward frees the graph.
    dot_path = viz.draw(loss, os.path.join(out_dir, name + ".dot"), params=rnn,
                        title=f"nn.RNN(2, 3, unroll={unroll}) over 3 steps")
    print(f"wrote {dot_path}")
    if shutil.which("dot"):          # Graphviz installed: render a picture as well
        print(f"wrote {viz.draw(loss, os.path.join(out_dir, name + '.png'), params=rnn)}")

    loss.backward()                  # the graph is freed now; the gradients are in .grad
    grad = rnn.weight_hh_l0.grad.numpy()     # the same for both: they compute the same BPTT
    print("  ∂L/∂W_hh (a sum over the 3 steps):", str(grad.round(4)).replace("\n", ""))

if not shutil.which("dot"):
    print("Graphviz is not installed, so no .png: install it (apt-get install graphviz, "
          "brew install graphviz or conda install graphviz) and run `dot -Tpng rnn_graph.dot "
          "-o rnn_graph.png`, or paste the .dot file into an online Graphviz viewer.")
