"""Neural-network layers, losses and helpers, named as in ``torch.nn``."""
from . import functional, utils
from .activation import ReLU, Sigmoid, Tanh
from .container import Sequential
from .dropout import Dropout
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .rnn import RNN, RNNCell

__all__ = ["Module", "Parameter", "Linear", "RNN", "RNNCell", "Tanh", "ReLU", "Sigmoid",
           "Sequential", "Dropout", "MSELoss", "CrossEntropyLoss", "functional", "utils"]
