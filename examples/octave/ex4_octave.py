"""Andrew Ng's ex4 in Octave: the student's nnCostFunction.m, checked as it is.

``nnCostFunction.m`` is right; ``nnCostFunctionBuggy.m`` regularises the bias column of
Theta1_grad and Theta2_grad (the cost does not). gradcheck runs each in GNU Octave (through
oct2py), unrolls [Theta1(:); Theta2(:)] column-major and names what is wrong: only column 0 of
dTheta1 and dTheta2 (Octave's column 1, the bias column). The data (ex4small.mat) holds Ng's
checkNNGradients sizes: 3 inputs, 5 hidden units, 3 labels, 5 examples, lambda = 3.

The same from the command line:
  gradcheck check examples/octave/nnCostFunctionBuggy.m --data examples/octave/ex4small.mat \\
      --params Theta1,Theta2 --args input_layer_size,hidden_layer_size,num_labels,X,y,lambda

Needs GNU Octave (sudo apt-get install octave) and pip install "gradcheck[octave]".
Run:  python examples/octave/ex4_octave.py
"""

from __future__ import annotations

from pathlib import Path

import gradcheck
from gradcheck.octave import check_m, from_mat

HERE = Path(__file__).resolve().parent
ARGS = ["input_layer_size", "hidden_layer_size", "num_labels", "X", "y", "lambda"]


def main(show: bool = True) -> dict[str, gradcheck.Report]:
    params, args = from_mat(HERE / "ex4small.mat", ["Theta1", "Theta2"], ARGS)
    reports = {name: check_m(HERE / f"{name}.m", params, args=args)
               for name in ("nnCostFunction", "nnCostFunctionBuggy")}
    if show:
        for name, report in reports.items():
            print(f"\n== {name}.m")
            print(report)
    return reports


if __name__ == "__main__":
    main()
