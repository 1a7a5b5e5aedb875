"""The famous CNNs of the lecture, with torchvision's constructor names.

Each constructor takes num_classes and in_channels. Where torchvision has the model,
the parameter count and the state_dict keys are torchvision's, so its weights load.
"""
from .lenet import lenet5
from .resnet import (BasicBlock, Bottleneck, ResNet, CifarResNet, ZeroPadShortcut,
                     resnet18, resnet20, resnet34, resnet50)
from .alexnet import AlexNet, alexnet
from .vgg import VGG, vgg11, vgg11_bn, vgg16, vgg16_bn
from .googlenet import BasicConv2d, GoogLeNet, GoogLeNetOutputs, Inception, InceptionAux, googlenet
from .densenet import DenseBlock, DenseLayer, DenseNet, Transition, densenet121
from .mobilenet import ConvBNReLU6, InvertedResidual, MobileNetV2, mobilenet_v2
from .nin import NiN, NiNBlock, nin
