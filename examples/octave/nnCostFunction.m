function [J grad] = nnCostFunction(nn_params, input_layer_size, hidden_layer_size, ...
                                   num_labels, X, y, lambda)
%NNCOSTFUNCTION The cost and gradient of a 2-layer network (Ng's ex4), written the course's way.
%   [J grad] = nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y,
%   lambda) takes the unrolled nn_params = [Theta1(:) ; Theta2(:)] and returns the regularised
%   cost J and the unrolled gradient grad = [Theta1_grad(:) ; Theta2_grad(:)].
%   The bias column (column 1) is not regularised, in the cost or in the gradient.

Theta1 = reshape(nn_params(1:hidden_layer_size * (input_layer_size + 1)), ...
                 hidden_layer_size, (input_layer_size + 1));
Theta2 = reshape(nn_params((1 + (hidden_layer_size * (input_layer_size + 1))):end), ...
                 num_labels, (hidden_layer_size + 1));
m = size(X, 1);

% Forward pass
a1 = [ones(m, 1) X];
z2 = a1 * Theta1';
a2 = [ones(m, 1) sigmoid(z2)];
z3 = a2 * Theta2';
a3 = sigmoid(z3);

% One-hot labels (y holds 1..num_labels)
I = eye(num_labels);
Y = I(y, :);

J = sum(sum(-Y .* log(a3) - (1 - Y) .* log(1 - a3))) / m;
J = J + lambda / (2 * m) * (sum(sum(Theta1(:, 2:end) .^ 2)) + sum(sum(Theta2(:, 2:end) .^ 2)));

% Backpropagation
d3 = a3 - Y;
d2 = (d3 * Theta2(:, 2:end)) .* sigmoidGradient(z2);
Theta1_grad = d2' * a1 / m;
Theta2_grad = d3' * a2 / m;

% Regularisation: every column but the bias column
Theta1_grad(:, 2:end) = Theta1_grad(:, 2:end) + lambda / m * Theta1(:, 2:end);
Theta2_grad(:, 2:end) = Theta2_grad(:, 2:end) + lambda / m * Theta2(:, 2:end);

grad = [Theta1_grad(:) ; Theta2_grad(:)];
end

function g = sigmoid(z)
g = 1.0 ./ (1.0 + exp(-z));
end

function g = sigmoidGradient(z)
g = sigmoid(z) .* (1 - sigmoid(z));
end
