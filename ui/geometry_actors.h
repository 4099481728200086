#pragma once
// The VTK actors of the 3D view (GeometryView): class means, classifier rows,
// ETF vertices and edges, the selection and the sample cloud. Point data
// carry each point's class ("mean_class", "etf_class", "sample_class").

#include <functional>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include <vtkSmartPointer.h>

class vtkActor;
class vtkUnsignedCharArray;

namespace ltlab::ui::scene {

// Head (blue, t = 0) to tail (red, t = 1) by rank in training count.
void rankColour(double t, unsigned char rgb[3]);

// Spheres as imposters (vtkOpenGLSphereMapper), coloured by `colours` (null:
// the actor's colour); each point's class in the array `class_array`.
vtkSmartPointer<vtkActor> spheres(const std::vector<Eigen::Vector3d>& centres, const std::vector<double>& radii,
                                  vtkUnsignedCharArray* colours, const std::vector<int>& classes,
                                  const char* class_array);

// Cones of `length` at the tips, pointing away from the origin.
vtkSmartPointer<vtkActor> arrowHeads(const std::vector<Eigen::Vector3d>& tips, double length,
                                     vtkUnsignedCharArray* colours, int resolution);

// A black wireframe sphere around the picked class.
vtkSmartPointer<vtkActor> shell(const Eigen::Vector3d& centre, double radius);

// Line segments, one colour each (null: grey).
vtkSmartPointer<vtkActor> lines(const std::vector<std::pair<Eigen::Vector3d, Eigen::Vector3d>>& segments,
                                vtkUnsignedCharArray* colours, double width);

// The sample cloud: one vertex per point, its class's colour lightened.
vtkSmartPointer<vtkActor> cloud(const std::vector<Eigen::Vector3d>& points, const std::vector<int>& classes,
                                const std::function<void(int, unsigned char[3])>& class_colour);

} // namespace ltlab::ui::scene
